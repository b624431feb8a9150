"""A node as IM clients expect to read it: RADL text, or RADL's simple JSON form (the VM
routes and the IM-form export both use it)."""

from __future__ import annotations

from typing import Any

from orbis.model.infrastructure import Compute
from orbis.store.schema import NodeRow


def node_radl(row: NodeRow, compute: Compute | None, private_key: str) -> list[dict[str, Any]]:
    """The node's networks and system, as RADL simple-JSON objects."""
    networks: list[dict[str, Any]] = []
    system: dict[str, Any] = {"class": "system", "id": row.name, "state": row.state}
    index = 0
    if row.public_ip:
        networks.append({"class": "network", "id": "public", "outbound": "yes"})
        system["net_interface.0.connection"] = "public"
        system["net_interface.0.ip"] = row.public_ip
        index = 1
    networks.append({"class": "network", "id": "private", "outbound": "no"})
    system[f"net_interface.{index}.connection"] = "private"
    if row.private_ip:
        system[f"net_interface.{index}.ip"] = row.private_ip
    spec = row.spec or {}  # what alter changed since the template
    if compute is not None:
        if spec.get("num_cpus") or compute.num_cpus:
            system["cpu.count"] = spec.get("num_cpus") or compute.num_cpus
        if spec.get("mem_size") or compute.mem_size:
            system["memory.size"] = spec.get("mem_size") or compute.mem_size
        if compute.image:
            system["disk.0.image.url"] = compute.image
        disks = [{"index": v.index, "size": v.size, "mount_path": v.mount_path,
                  "fstype": v.fs_type, "device": v.device} for v in compute.volumes]  # fmt: skip
        for disk in sorted(disks + list(spec.get("disks") or []), key=lambda d: d["index"]):
            for key in ("size", "mount_path", "fstype", "device"):
                if disk.get(key):
                    system[f"disk.{disk['index']}.{key}"] = disk[key]
    system["instance_id"] = row.provider_id or ""
    system["instance_name"] = f"{row.name}-{row.vm_id}"
    system["disk.0.os.name"] = "linux"
    system["disk.0.os.credentials.username"] = row.ssh_user
    system["disk.0.os.credentials.private_key"] = private_key
    if row.error:
        system["error_msg"] = row.error
    return [*networks, system]


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "'yes'" if value else "'no'"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def to_radl_text(objects: list[dict[str, Any]]) -> str:
    parts = []
    for obj in objects:
        features = [f"{k} = {_value(v)}" for k, v in obj.items() if k not in ("class", "id")]
        body = " and\n".join(features)
        parts.append(
            f"{obj['class']} {obj['id']} (\n{body}\n)" if body else f"{obj['class']} {obj['id']} ()"
        )
    return "\n\n".join(parts) + "\n"
