"""The `orbis` command: a thin REST client with live progress, plus `orbis server`."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from orbis.cli.bundle import bundle
from orbis.cli.client import ClientError, OrbisClient
from orbis.lang import CLIENT, load_template
from orbis.lang.compose import link_of, load_composed
from orbis.lang.errors import Problem, TemplateError
from orbis.model.infrastructure import Template

# a composed template: (merged text, base file its relative playbook paths start from)
Composed = tuple[str, Path] | None

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Deploy infrastructures described in TOSCA on clouds and local containers.",
)
out = Console()
err = Console(stderr=True, soft_wrap=True)  # messages stay whole lines (grep, copy)

FINAL = {"configured", "unconfigured", "failed", "off", "stopped"}
STATE_STYLE = {
    "configured": "green",
    "running": "cyan",
    "pending": "yellow",
    "unconfigured": "red",
    "failed": "bold red",
    "deleting": "magenta",
}


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"-i takes key=value, got '{pair}'")
        values[key.strip()] = value
    return values


WITH_HELP = "Add-on template (metadata.parents names FILE) to compose with FILE; repeatable"


def load_any(path: Path, inputs: dict[str, str], addons: list[Path]) -> tuple[Template, Composed]:
    """The template, and for a composition (--with, or a Dashboard link card) the merged text
    and the base file the bundle resolves playbooks from. Raises TemplateError."""
    for file in (path, *addons):
        if not file.is_file():
            raise TemplateError([Problem(None, f"{file}: no such file")])
    if not addons and link_of(path) is None:
        return load_template(path, inputs=inputs, sources=CLIENT), None  # the user's machine
    template, text, smap = load_composed(path, addons, inputs)
    return template, (text, Path(smap.base))


def load_or_explain(
    path: Path, inputs: dict[str, str], addons: list[Path] | None = None
) -> tuple[Template, Composed]:
    try:
        return load_any(path, inputs, addons or [])
    except TemplateError as exc:
        if len(exc.problems) == 1 and "no such file" in exc.problems[0].message:
            fail(exc.problems[0].message)
        names = " + ".join(str(p) for p in (path, *(addons or [])))
        err.print(f"[bold red]{names} is not valid:[/]", highlight=False)
        err.print(str(exc), highlight=False, markup=False)
        raise typer.Exit(1) from None


_WARNING = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$", re.S)


def _problem_json(problem: Problem) -> dict[str, Any]:
    pos = problem.position
    return {
        "file": pos.file if pos else None,
        "line": pos.line if pos else None,
        "col": pos.col if pos else None,
        "message": problem.message,
        "hint": problem.hint,
    }


def _warning_json(text: str) -> dict[str, Any]:
    found = _WARNING.match(text)
    if not found:
        return {"file": None, "line": None, "col": None, "message": text}
    return {
        "file": found["file"],
        "line": int(found["line"]),
        "col": int(found["col"]),
        "message": found["message"],
    }


def validation_report(path: Path, inputs: dict[str, str], addons: list[Path]) -> dict[str, Any]:
    """`orbis validate --json`: a stable shape for tools and editors."""
    files = [str(p) for p in (path, *addons)]
    try:
        template, _ = load_any(path, inputs, addons)
    except TemplateError as exc:
        return {
            "valid": False,
            "problems": [_problem_json(p) for p in exc.problems],
            "warnings": [],
            "summary": {"files": files},
        }
    return {
        "valid": True,
        "problems": [],
        "warnings": [_warning_json(w) for w in template.warnings],
        "summary": {
            "files": files,
            "name": template.name,
            "computes": {c.name: c.count for c in template.computes.values()},
            "components": sorted(template.components),
            "inputs": {k: v for k, v in template.inputs.items() if _jsonable(v)},
            "outputs": sorted(template.outputs),
        },
    }


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def client() -> OrbisClient:
    try:
        return OrbisClient()
    except ClientError as exc:
        fail(str(exc))
        raise


def styled(state: str) -> str:
    return f"[{STATE_STYLE.get(state, 'white')}]{state}[/]"


def nodes_table(detail: dict[str, Any]) -> Table:
    table = Table(
        title=f"{detail['id']}  {detail.get('name') or ''}  {styled(detail['state'])}",
        title_justify="left",
    )
    for column in ("VM", "node", "state", "private IP", "public IP", "step / error"):
        table.add_column(column)
    for n in detail["nodes"]:
        done = sum(1 for s in n["steps"] if s["status"] == "ok")
        note = n["error"] or (
            f"{n['current_step']} ({done}/{len(n['steps'])})" if n["current_step"] else ""
        )
        table.add_row(
            str(n["vm_id"]),
            n["name"],
            styled(n["state"]),
            n["private_ip"] or "",
            n["public_ip"] or "",
            note,
        )
    return table


def print_outputs(outputs: dict[str, Any]) -> None:
    table = Table(title="Outputs", title_justify="left")
    table.add_column("name")
    table.add_column("value")
    for name, value in outputs.items():
        table.add_row(name, value if isinstance(value, str) else json.dumps(value))
    out.print(table)


@app.command()
def server(
    host: str = typer.Option(None, help="Address to listen on (default 127.0.0.1)"),
    port: int = typer.Option(None, help="Port (default 8800)"),
) -> None:
    """Run the Orbis REST server (IM-compatible API)."""
    import logging

    import uvicorn

    from orbis import config
    from orbis.api.app import create_app

    settings = config.load()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        create_app(settings),
        host=host or settings.listen_host,
        port=port or settings.listen_port,
        log_level=os.environ.get("ORBIS_LOG_LEVEL", "info"),
        # one line per request costs more than answering a state request; opt in to it
        access_log=os.environ.get("ORBIS_ACCESS_LOG", "no").lower() in ("1", "yes", "true"),
        # asyncio's loop, not uvloop: uvloop answered ~30 % more requests under load but left a
        # few connections waiting 1-2 s (bench/api_load.py p99); httptools parses either way
        loop="asyncio",
    )


@app.command()
def validate(
    file: Path,
    inputs: list[str] = typer.Option([], "-i", "--input", help="Input value, key=value"),
    addons: list[Path] = typer.Option([], "--with", help=WITH_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON report (for tools)"),
) -> None:
    """Check a template without deploying it; errors name file:line:col."""
    if as_json:
        report = validation_report(file, parse_inputs(inputs), addons)
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        raise typer.Exit(0 if report["valid"] else 1)
    template, _ = load_or_explain(file, parse_inputs(inputs), addons)
    for warning in template.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    counts = ", ".join(f"{c.name}×{c.count}" for c in template.computes.values())
    names = " + ".join(str(p) for p in (file, *addons))
    out.print(
        f"[green]{names} is valid[/]: {len(template.computes)} compute node(s) ({counts}), "
        f"{len(template.components)} software component(s), "
        f"{len(template.outputs)} output(s)",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def deploy(
    file: Path,
    inputs: list[str] = typer.Option([], "-i", "--input", help="Input value, key=value"),
    no_wait: bool = typer.Option(False, "--no-wait", help="Return once the request is accepted"),
    addons: list[Path] = typer.Option([], "--with", help=WITH_HELP),
) -> None:
    """Deploy a template and follow its nodes until they are configured."""
    values = parse_inputs(inputs)
    template, composed = load_or_explain(file, values, addons)
    for warning in template.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if composed is None:
        text = bundle(file, template, values)
    else:
        text = bundle(composed[1], template, values, text=composed[0])
    api = client()
    try:
        infra_id = api.create(text, file.name)
    except ClientError as exc:
        fail(str(exc))
    out.print(f"Infrastructure [bold]{infra_id}[/] created", highlight=False)
    if no_wait:
        return
    detail = follow(api, infra_id)
    if detail["state"] == "configured":
        print_outputs(api.outputs(infra_id))
        return
    err.print(f"[red]deployment ended {detail['state']}[/]; see `orbis logs {infra_id}`")
    raise typer.Exit(1)


def follow(api: OrbisClient, infra_id: str) -> dict[str, Any]:
    """Show live per-node progress until the infrastructure settles; return its last view.

    Views come from the server's event stream; if it cannot be had or breaks, polling takes
    over. On a terminal the node table updates in place; otherwise (logs, CI) each change of
    a node's state or step is printed as a line.
    """
    start = time.monotonic()
    seen: dict[int, tuple[str, str | None]] = {}
    detail: dict[str, Any] | None = None

    def show(live: Live, view: dict[str, Any]) -> None:
        if out.is_terminal:
            live.update(nodes_table(view))
        else:
            for line in progress_lines(view, seen, time.monotonic() - start):
                live.console.print(line, highlight=False)

    def views() -> Iterator[dict[str, Any]]:
        stream = api.stream(infra_id)
        while True:
            try:
                yield next(stream)
            except (StopIteration, ClientError):
                break  # ended, an older server, or the stream broke: poll from here on
        while True:
            try:
                yield api.detail(infra_id)
            except ClientError as exc:
                fail(str(exc))
            time.sleep(0.25)

    with Live(console=out, refresh_per_second=8, transient=not out.is_terminal) as live:
        for view in views():
            detail = view
            show(live, view)
            if view["phase"] == "done" and (view["state"] in FINAL or not view["nodes"]):
                break
    assert detail is not None
    if not out.is_terminal:
        out.print(nodes_table(detail))
    out.print(f"{detail['state']} after {time.monotonic() - start:.1f} s", highlight=False)
    return detail


def progress_lines(
    detail: dict[str, Any], seen: dict[int, tuple[str, str | None]], elapsed: float
) -> list[str]:
    """One line per node whose state or current step changed since the last call."""
    lines = []
    for n in detail["nodes"]:
        now = (n["state"], n["current_step"])
        if seen.get(n["vm_id"]) != now:
            seen[n["vm_id"]] = now
            step = f"  step {n['current_step']}" if n["current_step"] else ""
            error = f"  {n['error']}" if n["error"] else ""
            lines.append(
                f"{elapsed:6.1f}s  {n['name']} (VM {n['vm_id']}): {styled(n['state'])}{step}{error}"
            )
    return lines


@app.command("list")
def list_() -> None:
    """List your infrastructures."""
    api = client()
    try:
        ids = api.list()
        table = Table()
        table.add_column("id", no_wrap=True, min_width=36)  # whole ids: scripts grep them
        for column in ("name", "state", "nodes", "created"):
            table.add_column(column)
        for infra_id in ids:
            d = api.detail(infra_id)
            table.add_row(
                d["id"],
                d.get("name") or "",
                styled(d["state"]),
                str(len(d["nodes"])),
                d["created_at"][:19],
            )
    except ClientError as exc:
        fail(str(exc))
    out.print(table if ids else "No infrastructures.")


@app.command()
def show(infra_id: str) -> None:
    """Show an infrastructure's nodes, addresses and configuration steps."""
    try:
        out.print(nodes_table(client().detail(infra_id)))
    except ClientError as exc:
        fail(str(exc))


@app.command()
def outputs(infra_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Print an infrastructure's outputs."""
    try:
        values = client().outputs(infra_id)
    except ClientError as exc:
        fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(values, indent=2) + "\n")
    else:
        print_outputs(values)


@app.command()
def logs(infra_id: str, node: str = typer.Argument(None, help="VM id or node name")) -> None:
    """Print the configuration log of an infrastructure, or of one node."""
    api = client()
    try:
        if node is None:
            sys.stdout.write(api.contmsg(infra_id))
            return
        detail = api.detail(infra_id)
        vms = [n["vm_id"] for n in detail["nodes"] if str(n["vm_id"]) == node or n["name"] == node]
        if not vms:
            fail(f"no node '{node}' in {infra_id}")
        for vm_id in vms:
            sys.stdout.write(f"== VM {vm_id} ==\n{api.contmsg(infra_id, vm_id)}")
    except ClientError as exc:
        fail(str(exc))


@app.command()
def destroy(infra_id: str) -> None:
    """Destroy an infrastructure and everything it created."""
    try:
        client().destroy(infra_id)
    except ClientError as exc:
        fail(str(exc))
    out.print(f"Infrastructure {infra_id} destroyed", highlight=False)


from orbis.cli import lifecycle, plan, sites  # noqa: E402,F401  (register their commands)

if __name__ == "__main__":
    # Run as a script, this file is __main__, a second copy of the module: use the imported
    # one, on whose app the lifecycle commands are registered.
    from orbis.cli.main import app as registered

    registered()
