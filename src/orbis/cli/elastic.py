"""`orbis elastic ID`: an elastic cluster's workers, demand and decisions with reasons."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from orbis.cli.client import ClientError, OrbisClient
from orbis.cli.console import app, client, fail, out


@app.command()
def elastic(
    infra_id: str,
    as_json: bool = typer.Option(False, "--json"),
    last: int = typer.Option(10, help="How many of the latest decisions"),
    follow: bool = typer.Option(False, "--follow", "-f",
                                help="Then print each new decision as the monitor makes it"),
) -> None:
    """Show an elastic cluster: workers with their Slurm and Orbis states, pending jobs, and
    the latest power on/off decisions with their reasons."""
    api = client()
    try:
        view = api.elastic(infra_id)
    except ClientError as exc:
        fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(view, indent=2) + "\n")
        return
    out.print(_summary(view), highlight=False)
    if view.get("error"):
        out.print(f"[red]{view['error']}[/]", highlight=False)
    reading: dict[str, Any] = view.get("view") or {}
    workers = Table("VM", "pool", "name", "Orbis", "Slurm", "idle")
    for w in reading.get("workers", []):
        workers.add_row(str(w["vm_id"]), w["pool"], w["name"], w["state"],
                        escape(w["lrms"] or "-"),
                        f"{w['idle_seconds']} s" if w["idle_seconds"] else "")  # fmt: skip
    out.print(workers)
    pending = reading.get("pending", [])
    out.print(f"pending: {reading.get('pending_count', 0)} job(s), "
              f"{reading.get('pending_cpus', 0)} CPU(s); running: "
              f"{reading.get('running_jobs', 0)} job(s)", highlight=False)  # fmt: skip
    for j in pending:
        out.print(escape(f"  job {j['id']}: {j['cpus']} CPU(s) on {j['nodes']} node(s), "
                         f"partition {j['partition']}, Slurm says {j['reason']}"),
                  highlight=False)  # fmt: skip
    decisions = Table("when", "decision", "reason")
    for d in view.get("decisions", [])[-last:]:
        decisions.add_row(time.strftime("%H:%M:%S", time.localtime(d["at"])), d["action"],
                          escape(d["reason"]))  # Slurm's words: no markup  # fmt: skip
    out.print(decisions)
    if follow:
        _follow(api, infra_id, int(view.get("last_event") or 0))


def _follow(api: OrbisClient, infra_id: str, after: int) -> None:
    """Print decisions from the event stream as they come, until interrupted."""
    out.print("following the monitor's decisions (Ctrl-C to stop)", highlight=False)
    try:
        for d in api.decisions(infra_id, after):
            at = d["at"][11:19]  # the server's ISO time: HH:MM:SS
            where = f" [{d['pool']}]" if d.get("pool") else ""
            out.print(escape(f"{at} {d['action']}{where}: {d['reason']}"), highlight=False)
    except ClientError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        return


def _summary(view: dict[str, Any]) -> str:
    pools = ", ".join(f"{p['compute']} {p['min']}..{p['max']} × {p['cpus']} CPU{_ec3(p)}"
                      for p in view["pools"])  # fmt: skip
    k = view["knobs"]
    return (f"{view['lrms']} on {view['front']} (partition {view['partition']}); pools in "
            f"order: {pools}; idle {k['idle_time']:g} s, max booting {k['max_booting']}, "
            f"cooldown {k['cooldown']:g} s, spares {k['warm_spares']}, join retries "
            f"{k['join_retries']}; monitor: {view.get('monitor') or 'none yet'}")


def _ec3(pool: dict[str, Any]) -> str:
    """A pool's EC3 features, if it has any (names, reuse, paid period)."""
    said = []
    if pool.get("names"):
        names = pool["names"]
        said.append(f"names {names[0]}..{names[-1]}" if len(names) > 2 else
                    f"names {', '.join(names)}")  # fmt: skip
    if pool.get("reuse"):
        said.append("stopped when idle")
    if pool.get("destroy_interval"):
        said.append(f"paid by {pool['destroy_interval']:g} s")
    return f" ({'; '.join(said)})" if said else ""
