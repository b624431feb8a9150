"""`orbis functions ID` and `orbis invoke ID FUNCTION`: an infrastructure's OSCAR services and
Lambda functions, and a synchronous run of one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from orbis.cli.client import ClientError
from orbis.cli.console import app, client, fail, out


@app.command()
def functions(
    infra_id: str,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (for tools)"),
) -> None:
    """The infrastructure's functions: where each went, its endpoint and state."""
    try:
        found = client().json(f"/orbis/infrastructures/{infra_id}/functions")["functions"]
    except ClientError as exc:
        fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
        return
    table = Table(title=f"Functions of {infra_id}")
    for column in ("function", "service", "on", "endpoint", "state"):
        table.add_column(column)
    for f in found:
        state = f["state"] + (f" ({f['error']})" if f["error"] else "")
        where = f"{f['backend']} {f['site']}".strip()
        table.add_row(f["name"], f["service"], where, f["endpoint"], state)
    out.print(table)


@app.command()
def invoke(
    infra_id: str,
    function: str,
    file: Path = typer.Option(None, "--file", "-f", help="Input file (default: empty input)"),
) -> None:
    """Run one function synchronously (OSCAR /run, Lambda Invoke) and print its output."""
    data = b""
    if file is not None:
        try:
            data = file.read_bytes()
        except OSError as exc:
            fail(f"{file}: {exc.strerror}")
    try:
        answer = client().request(
            "POST", f"/orbis/infrastructures/{infra_id}/functions/{function}/invoke",
            content=data, headers={"Content-Type": "application/octet-stream"}, timeout=360,
        )  # fmt: skip
    except ClientError as exc:
        fail(str(exc))
    sys.stdout.buffer.write(answer.content)
    sys.stdout.flush()
