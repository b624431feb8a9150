"""Previews computed from the model alone, touching no cloud: IM's `dry_run` estimate, and
Orbis's plan (what a create or an update would create, change or remove). Pure functions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from orbis.auth import Identity
from orbis.config import Settings
from orbis.model.compare import canonical
from orbis.model.infrastructure import Compute, Template
from orbis.placement.sites import LOCAL_TYPES, NOT_CLOUDS

# Compute fields a change of which a plan reports (everything else is configuration).
SIZE_FIELDS = ("num_cpus", "mem_size", "disk_size", "image", "instance_type", "num_gpus",
               "public", "os_distribution", "os_version", "cpu_arch")  # fmt: skip


class LiveNode(Protocol):
    vm_id: int
    name: str


def _clouds(who: Identity, settings: Settings) -> list[tuple[str, str, str]]:
    """(id, type, endpoint) of the caller's clouds in order; the local back-end when none."""
    found = []
    for line in who.clouds:
        kind = line.get("type", "")
        if kind.lower() in NOT_CLOUDS:
            continue
        local = kind.lower() in LOCAL_TYPES
        endpoint = (settings.docker_host or "local") if local else line.get("host", "")
        found.append((line.get("id") or kind.lower(), "Local" if local else kind, endpoint))
    return found or [("local", "Local", settings.docker_host or "local")]


def dry_run(template: Template, who: Identity, settings: Settings) -> dict[str, Any]:
    """`{cloudId: {cloudType, cloudEndpoint, compute: [...], storage: [...]}}`, IM's shape.
    A node goes to its placement's cloud, else the caller's first cloud (as IM estimates); the
    ranking and fallback of a real deployment read the clouds' catalogues, which this does not."""
    clouds: dict[str, dict[str, Any]] = {}
    known = {cloud[0]: cloud for cloud in _clouds(who, settings)}
    first = next(iter(known))
    for compute in template.computes.values():
        cloud = (compute.cloud_id or first).split(",")[0].strip()
        _, kind, endpoint = known.get(cloud, (cloud, "unknown", ""))
        entry = clouds.setdefault(
            cloud, {"cloudType": kind, "cloudEndpoint": endpoint, "compute": [], "storage": []}
        )
        for _ in range(compute.count):
            entry["compute"].append(_compute(compute))
            for volume in compute.volumes:
                entry["storage"].append(
                    {"sizeInGigabytes": _gb(volume.size), "type": volume.type or "default"}
                )
    return clouds


def _gb(size: int | None) -> int:
    return int(size / 1e9) if size else 0


def _compute(c: Compute) -> dict[str, Any]:
    return {
        "cpuCores": c.num_cpus or 1,
        "memoryInMegabytes": int(c.mem_size / 1e6) if c.mem_size else 0,
        "diskSizeInGigabytes": _gb(c.disk_size),
        "publicIP": 1 if c.public else 0,
        "GPU": c.num_gpus or 0,
    }


def plan(
    new: Template, old: Template | None = None, live: Iterable[LiveNode] = ()
) -> dict[str, Any]:
    """What applying `new` would do: to nothing (a create), or to `old` with its `live` nodes."""
    by_name: dict[str, list[int]] = {}
    for node in live:
        by_name.setdefault(node.name, []).append(node.vm_id)
    old_computes = old.computes if old is not None else {}
    create: list[dict[str, Any]] = []
    change: list[dict[str, Any]] = []
    remove: list[dict[str, Any]] = []
    unchanged: list[str] = []
    for name, compute in new.computes.items():
        current = sorted(by_name.get(name, []))
        before = old_computes.get(name)
        extra = compute.count - len(current)
        if extra > 0:
            create.append({"node": name, "count": extra, "size": _compute(compute)})
        elif extra < 0:
            wanted = [int(v) for v in compute.removal_list if str(v).isdigit()]
            chosen = [v for v in wanted if v in current][:-extra]
            rest = [v for v in reversed(current) if v not in chosen]
            chosen += rest[: -extra - len(chosen)]  # IM removes the newest ones otherwise
            remove.append({"node": name, "vm_ids": sorted(chosen)})
        fields = _changed(before, compute) if before is not None else {}
        kept = [v for v in current if not any(v in r["vm_ids"] for r in remove)]
        if fields and kept:
            change.append({"node": name, "vm_ids": kept, "fields": fields})
        elif extra == 0 and not fields:
            unchanged.append(name)
    for name, ids in by_name.items():
        if name not in new.computes:
            remove.append({"node": name, "vm_ids": sorted(ids)})
    reconfigure = _changed_components(old, new) if old is not None else []
    return {
        "create": create,
        "change": change,
        "remove": remove,
        "reconfigure": reconfigure,
        "unchanged": unchanged,
        "summary": {
            "create": sum(c["count"] for c in create),
            "change": sum(len(c["vm_ids"]) for c in change),
            "remove": sum(len(r["vm_ids"]) for r in remove),
        },
    }


def _changed(before: Compute, after: Compute) -> dict[str, list[Any]]:
    return {
        f: [getattr(before, f), getattr(after, f)]
        for f in SIZE_FIELDS
        if getattr(before, f) != getattr(after, f)
    }


def _changed_components(old: Template, new: Template) -> list[str]:
    """Software components whose configuration differs (they would run again)."""
    names = []
    for name, comp in new.components.items():
        previous = old.components.get(name)
        if previous is None or canonical(previous) != canonical(comp):
            names.append(name)
    return names
