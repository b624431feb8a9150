"""`orbis sites`: where the caller can deploy, with images, flavors and quotas."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from orbis.cli.client import ClientError
from orbis.cli.console import app, client, fail, out


def _quota(q: dict[str, Any]) -> str:
    limit = "∞" if q["limit"] < 0 else f"{q['limit']:g}"
    return f"{q['used']:g}/{limit}"


@app.command()
def sites(
    site: str = typer.Argument(None, help="Only this site (an auth line id)"),
    refresh: bool = typer.Option(False, "--refresh", help="Ask the clouds again (no cache)"),
    as_json: bool = typer.Option(False, "--json"),
    all_images: bool = typer.Option(False, "--all", help="List every image and flavor"),
) -> None:
    """The sites your auth file gives (and the server's own), with images, flavors, quotas."""
    params: dict[str, Any] = {"refresh": str(refresh).lower()}
    if site:
        params["site"] = site
    try:
        found = client().json("/orbis/sites", params=params)["sites"]
    except ClientError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps(found))
        return
    summary = Table(title="Sites")
    for column in ("site", "type", "images", "flavors", "quotas", "note"):
        summary.add_column(column)
    for s in found:
        quotas = ", ".join(f"{k} {_quota(q)}" for k, q in s["quotas"].items())
        note = f"[red]{s['error']}[/]" if s["error"] else (s["warning"] or "")
        summary.add_row(s["id"], s["type"] + (" (server)" if s["shared"] else ""),
                        str(len(s["images"])), str(len(s["flavors"])), quotas, note)  # fmt: skip
    out.print(summary)
    limit = None if all_images or site else 10
    for s in found:
        if s["flavors"]:
            table = Table(title=f"{s['id']}: flavors")
            for column in ("name", "vCPUs", "RAM MB", "disk GB", "GPUs"):
                table.add_column(column)
            for f in s["flavors"][:limit]:
                table.add_row(f["name"], str(f["vcpus"]), str(f["ram_mb"]), str(f["disk_gb"]),
                              str(f["gpus"] or ""))  # fmt: skip
            out.print(table)
        if s["images"]:
            table = Table(title=f"{s['id']}: images")
            for column in ("name", "OS", "URL"):
                table.add_column(column)
            for i in s["images"][:limit]:
                os_name = " ".join(x for x in (i["os_distro"], i["os_version"]) if x)
                table.add_row(i["name"], os_name, i["url"])
            out.print(table)
