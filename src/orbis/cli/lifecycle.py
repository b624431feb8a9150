"""`orbis` commands on a running infrastructure: scale, update, stop/start/reboot, reconfigure,
retry, alter, snapshot, export and import. Each is one IM-compatible REST call (or an Orbis one
where IM has none), then follows the infrastructure until the change is done."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import typer

from orbis.cli.bundle import bundle
from orbis.cli.client import ClientError, OrbisClient
from orbis.cli.console import app, client, err, fail, out, parse_inputs
from orbis.cli.progress import follow
from orbis.cli.templates import WITH_HELP, load_or_explain
from orbis.lang.merge import count_patch

NO_WAIT = typer.Option(False, "--no-wait", help="Return once the request is accepted")
NODE = typer.Argument(None, help="VM id or node name (default: every node)")


def vm_ids(api: OrbisClient, infra_id: str, node: str | None) -> list[int] | None:
    """The VM ids a NODE argument names: a VM id, or every VM of a node template."""
    if node is None:
        return None
    detail = api.detail(infra_id)
    ids = [n["vm_id"] for n in detail["nodes"] if str(n["vm_id"]) == node or n["name"] == node]
    if not ids:
        fail(f"no node '{node}' in {infra_id}")
    return ids


def finish(api: OrbisClient, infra_id: str, no_wait: bool) -> None:
    if no_wait:
        return
    detail = follow(api, infra_id)
    if detail["state"] not in ("configured", "stopped"):
        err.print(f"[red]ended {detail['state']}[/]; see `orbis logs {infra_id}`")
        raise typer.Exit(1)


@app.command()
def scale(infra_id: str, node: str, count: int, no_wait: bool = NO_WAIT) -> None:
    """Set how many instances of NODE there are (adds or removes VMs)."""
    api = client()
    try:
        new = api.request(
            "POST", f"/infrastructures/{infra_id}", content=count_patch(node, count),
            headers={"Content-Type": "text/yaml", "Accept": "application/json"},
        )  # fmt: skip
        added = [u["uri"].rsplit("/", 1)[-1] for u in new.json().get("uri-list", [])]
        out.print(f"{node}: {count} instance(s); new VMs: {', '.join(added) or 'none'}")
        finish(api, infra_id, no_wait)
    except ClientError as exc:
        fail(str(exc))


@app.command()
def update(
    infra_id: str,
    file: Path,
    inputs: list[str] = typer.Option([], "-i", "--input", help="Input value, key=value"),
    addons: list[Path] = typer.Option([], "--with", help=WITH_HELP),
    no_wait: bool = NO_WAIT,
) -> None:
    """Apply a changed template: counts add or remove VMs, other changes reconfigure."""
    values = parse_inputs(inputs)
    template, composed = load_or_explain(file, values, addons)
    text = (bundle(file, template, values) if composed is None
            else bundle(composed[1], template, values, text=composed[0]))  # fmt: skip
    api = client()
    try:
        api.request("POST", f"/infrastructures/{infra_id}", content=text.encode(),
                    headers={"Content-Type": "text/yaml"})  # fmt: skip
        finish(api, infra_id, no_wait)
    except ClientError as exc:
        fail(str(exc))


def _power(action: str, infra_id: str, node: str | None) -> None:
    api = client()
    try:
        ids = vm_ids(api, infra_id, node)
        if ids is None:
            api.request("PUT", f"/infrastructures/{infra_id}/{action}", timeout=600)
        for vm_id in ids or []:
            api.request("PUT", f"/infrastructures/{infra_id}/vms/{vm_id}/{action}", timeout=600)
        what = "every node" if node is None else f"node {node}"
        out.print(f"{action}: {what} of {infra_id}", highlight=False)
        finish(api, infra_id, no_wait=False)
    except ClientError as exc:
        fail(str(exc))


@app.command()
def stop(infra_id: str, node: str = NODE) -> None:
    """Stop an infrastructure, or one node."""
    _power("stop", infra_id, node)


@app.command()
def start(infra_id: str, node: str = NODE) -> None:
    """Start a stopped infrastructure, or one node."""
    _power("start", infra_id, node)


@app.command()
def reboot(infra_id: str, node: str = NODE) -> None:
    """Reboot an infrastructure, or one node."""
    _power("reboot", infra_id, node)


@app.command()
def reconfigure(infra_id: str, node: str = NODE, no_wait: bool = NO_WAIT) -> None:
    """Run the configuration (Ansible) again, on every node or on one."""
    api = client()
    try:
        ids = vm_ids(api, infra_id, node)
        params = {} if ids is None else {"vm_list": ",".join(map(str, ids))}
        api.request("PUT", f"/infrastructures/{infra_id}/reconfigure", params=params)
        finish(api, infra_id, no_wait)
    except ClientError as exc:
        fail(str(exc))


@app.command()
def retry(infra_id: str, no_wait: bool = NO_WAIT) -> None:
    """Launch failed nodes again and reconfigure unconfigured ones."""
    api = client()
    try:
        answer = api.request("POST", f"/orbis/infrastructures/{infra_id}/retry")
        out.print(f"retrying VMs: {', '.join(map(str, answer.json()['vm_ids'])) or 'none'}")
        finish(api, infra_id, no_wait)
    except ClientError as exc:
        fail(str(exc))


@app.command()
def alter(
    infra_id: str,
    node: str = typer.Argument(..., help="VM id or node name (every VM of it)"),
    cpus: float = typer.Option(None, "--cpus", help="New number of CPUs"),
    memory: str = typer.Option(None, "--memory", help="New memory size, e.g. 4G or 512M"),
    disks: list[str] = typer.Option(
        [], "--disk", help="Add a disk: SIZE[:MOUNT_PATH[:FSTYPE]], e.g. 20G:/data"
    ),
) -> None:
    """Resize running VMs in place and/or add disks to them (IM's alter)."""
    if cpus is None and memory is None and not disks:
        fail("nothing to change: give --cpus, --memory or --disk")
    api = client()
    try:
        for vm_id in vm_ids(api, infra_id, node) or []:
            path = f"/infrastructures/{infra_id}/vms/{vm_id}"
            current = api.json(path)["radl"]
            system = next(o for o in current if o["class"] == "system")
            taken = [int(k.split(".")[1]) for k in system if re.fullmatch(r"disk\.\d+\.\w+", k)]
            features = [f"cpu.count = {cpus:g}"] if cpus is not None else []
            if memory is not None:
                features.append(f"memory.size = {_size(memory)}")
            for number, disk in enumerate(disks, start=max([0, *taken]) + 1):
                size, _, rest = disk.partition(":")
                mount, _, fstype = rest.partition(":")
                features.append(f"disk.{number}.size = {_size(size)}")
                if mount:
                    features.append(f"disk.{number}.mount_path = '{mount}' and "
                                    f"disk.{number}.fstype = '{fstype or 'ext4'}'")  # fmt: skip
            text = f"system {system['id']} (\n" + " and\n".join(features) + "\n)\n"
            answer = api.request("PUT", path, content=text.encode(), timeout=1800,
                                 headers={"Content-Type": "text/plain",
                                          "Accept": "application/json"})  # fmt: skip
            after = next(o for o in answer.json()["radl"] if o["class"] == "system")
            shown = {
                k: v
                for k, v in after.items()
                if k in ("cpu.count", "memory.size") or re.fullmatch(r"disk\.\d+\.\w+", k)
            }
            out.print(f"VM {vm_id}: " + ", ".join(f"{k} = {v}" for k, v in shown.items()),
                      highlight=False)  # fmt: skip
    except ClientError as exc:
        fail(str(exc))


def _size(text: str) -> str:
    """A size as RADL writes it (10G, 512M; a bare number is bytes)."""
    if not re.fullmatch(r"\d+(\.\d+)?\s*([kKmMgGtT][iI]?[bB]?)?", text.strip()):
        fail(f"not a size: {text!r} (e.g. 20G, 512M)")
    return text.strip().replace(" ", "")


@app.command()
def snapshot(
    infra_id: str,
    node: str = typer.Argument(..., help="VM id or node name (its first VM)"),
    name: str = typer.Option(..., "--name", "-n", help="Name of the new image"),
    disk: int = typer.Option(0, "--disk", help="Disk number (0: the boot disk)"),
    auto_delete: bool = typer.Option(
        False, "--auto-delete", help="Delete the image when the infrastructure is destroyed"
    ),
) -> None:
    """Save a node's disk as an image; prints the image URL, which a template can name."""
    api = client()
    try:
        ids = vm_ids(api, infra_id, node) or []
        answer = api.request(
            "PUT", f"/infrastructures/{infra_id}/vms/{ids[0]}/disks/{disk}/snapshot",
            params={"image_name": name, "auto_delete": "yes" if auto_delete else "no"},
            headers={"Accept": "application/json"}, timeout=3600,
        )  # fmt: skip
    except ClientError as exc:
        fail(str(exc))
    out.print(answer.json()["uri"], highlight=False)


@app.command("export")
def export_(
    infra_id: str,
    form: str = typer.Option("orbis", "--format",
                             help="orbis (Orbis's own form) or im (IM's, for IM's import)"),
) -> None:  # fmt: skip
    """Print an infrastructure as JSON (for `orbis import`, or IM's PUT /infrastructures)."""
    try:
        data = client().json(f"/infrastructures/{infra_id}/data", params={"format": form})["data"]
    except ClientError as exc:
        fail(str(exc))
    sys.stdout.write(data if data.endswith("\n") else data + "\n")


@app.command("import")
def import_(file: Path) -> None:
    """Register an exported infrastructure, Orbis's or IM's (it gets a new id; you own it)."""
    if not file.is_file():
        fail(f"{file}: no such file")
    text = file.read_text()
    try:
        json.loads(text)
    except ValueError as exc:
        fail(f"{file}: not JSON ({exc})")
    try:
        answer = client().request("PUT", "/infrastructures", content=text.encode(),
                                  headers={"Content-Type": "application/json",
                                           "Accept": "application/json"})  # fmt: skip
    except ClientError as exc:
        fail(str(exc))
    out.print(f"Infrastructure {answer.json()['uri'].rsplit('/', 1)[-1]} imported",
              highlight=False)  # fmt: skip
