"""What every `orbis` command shares: the Typer app, the consoles, the client, error exits and
the node table. Command modules import from here (never from each other), so cli/ has no cycle."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from orbis.cli.client import ClientError, OrbisClient

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Deploy infrastructures described in TOSCA on clouds and local containers.",
)
out = Console()
err = Console(stderr=True, soft_wrap=True)  # messages stay whole lines (grep, copy)

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
