"""Live progress of an infrastructure: the server's event stream, or polling when it fails."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from rich.live import Live

from orbis.cli.client import ClientError, OrbisClient
from orbis.cli.console import err, fail, nodes_table, out, styled
from orbis.model.states import settled


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
        try:
            yield from api.stream(infra_id)
            why = "the server's event stream ended before the infrastructure settled"
        except ClientError as exc:  # an older server, a proxy that buffers, or a broken stream
            why = f"no live event stream ({exc})"
        err.print(f"[yellow]{why}; following by polling instead[/]", highlight=False)
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
            if settled(view):
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
