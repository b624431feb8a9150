"""The `orbis` command: a thin REST client with live progress, plus `orbis server`.

This module holds the core commands and registers the others (lifecycle, plan, sites, remote);
what they share lives in console.py, templates.py and progress.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from orbis.cli.bundle import bundle
from orbis.cli.client import ClientError
from orbis.cli.console import (
    app,
    client,
    err,
    fail,
    nodes_table,
    out,
    parse_inputs,
    print_outputs,
    styled,
)
from orbis.cli.progress import follow
from orbis.cli.templates import WITH_HELP, load_or_explain, validation_report


@app.command()
def server(
    host: str = typer.Option(None, help="Address to listen on (default 127.0.0.1)"),
    port: int = typer.Option(None, help="Port (default 8800)"),
    workers: int = typer.Option(1, min=1, help="Server processes on this port (they share "
                                "the work through the database, as several machines do)"),
) -> None:
    """Run the Orbis REST server (IM-compatible API)."""
    from orbis.cli.serve import run

    run(host, port, workers)


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
        f"{len(template.containers)} container app(s), "
        f"{len(template.functions)} function(s), "
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
        detail = client().detail(infra_id)
    except ClientError as exc:
        fail(str(exc))
    out.print(nodes_table(detail))
    if detail.get("functions"):
        table = Table(title="Functions")
        for column in ("function", "service", "endpoint", "state"):
            table.add_column(column)
        for f in detail["functions"]:
            state = f["state"] + (f" ({f['error']})" if f["error"] else "")
            table.add_row(f["name"], f["service"], f["endpoint"], state)
        out.print(table)


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


from orbis.cli import (  # noqa: E402,F401  (register their commands)
    elastic,
    functions,
    lifecycle,
    plan,
    remote,
    sites,
)

__all__ = ["app"]

if __name__ == "__main__":  # python -m orbis.cli.main (the test harness)
    app()
