"""`orbis plan`: what a deploy (or an update) would do, before doing it; with `--sites`, where
each node would go and why not elsewhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from orbis.cli.bundle import bundle
from orbis.cli.client import ClientError
from orbis.cli.console import app, client, fail, out, parse_inputs
from orbis.cli.templates import WITH_HELP, load_or_explain


def _size(size: dict[str, Any]) -> str:
    parts = [f"{size['cpuCores']:g} CPU", f"{size['memoryInMegabytes']} MB"]
    if size.get("GPU"):
        parts.append(f"{size['GPU']} GPU")
    if size.get("publicIP"):
        parts.append("public IP")
    return ", ".join(parts)


def _changes(plan: dict[str, Any]) -> Table:
    table = Table(title="Plan", show_header=True)
    for column in ("action", "node", "VMs", "details"):
        table.add_column(column)
    for item in plan["create"]:
        table.add_row("[green]create[/]", item["node"], str(item["count"]), _size(item["size"]))
    for item in plan["change"]:
        fields = ", ".join(f"{k}: {v[0]} → {v[1]}" for k, v in item["fields"].items())
        table.add_row("[yellow]change[/]", item["node"], _ids(item["vm_ids"]), fields)
    for item in plan["remove"]:
        table.add_row("[red]remove[/]", item["node"], _ids(item["vm_ids"]), "")
    for name in plan.get("reconfigure") or []:
        table.add_row("reconfigure", name, "", "")
    return table


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids))


def _placement(placement: dict[str, Any]) -> Table:
    table = Table(title="Where the nodes would go", show_header=True)
    for column in ("node", "candidate sites, best first", "not there, because"):
        table.add_column(column)
    for node in placement["nodes"]:
        sites = [s["id"] + (f" ({s['flavor']})" if s["flavor"] else "")
                 + ("" if s["checked"] else " (catalogue unread: tried last)")
                 for s in node["sites"]]  # fmt: skip
        notes = [f"{site}: {why}" for site, why in node["excluded"].items()]
        notes += [f"[yellow]{warning}[/]" for warning in node["warnings"]]
        table.add_row(node["node"], "\n".join(sites) or "[red]none[/]", "\n".join(notes))
    return table


@app.command()
def plan(
    file: Path,
    inputs: list[str] = typer.Option([], "-i", "--input", help="Input value, key=value"),
    addons: list[Path] = typer.Option([], "--with", help=WITH_HELP),
    infra_id: str = typer.Option(None, "--infra", help="Plan an update of this infrastructure"),
    sites: bool = typer.Option(
        False, "--sites", help="Also say where each node would go (reads the sites' catalogues)"
    ),  # fmt: skip
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """What deploying FILE (or updating --infra with it) would create, change or remove.
    Nothing is created."""
    values = parse_inputs(inputs)
    template, composed = load_or_explain(file, values, addons)
    text = (bundle(file, template, values) if composed is None
            else bundle(composed[1], template, values, text=composed[0]))  # fmt: skip
    params = {"sites": "yes" if sites else "no"}
    if infra_id:
        params["infId"] = infra_id
    try:
        answer = client().request(
            "POST", "/orbis/plan", content=text.encode(), params=params,
            headers={"Content-Type": "text/yaml", "Accept": "application/json"},
        ).json()  # fmt: skip
    except ClientError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps(answer))
        return
    out.print(_changes(answer))
    summary = answer["summary"]
    out.print(f"{summary['create']} to create, {summary['change']} to change, "
              f"{summary['remove']} to remove", highlight=False)  # fmt: skip
    if sites:
        out.print(_placement(answer["placement"]))
        for warning in answer["placement"]["warnings"]:
            out.print(f"[yellow]warning:[/] {warning}", highlight=False)
