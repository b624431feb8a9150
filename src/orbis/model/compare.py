"""A template reduced to what it means, to compare templates written in different languages.

Positions, type names, the source file, warnings and language-only metadata are left out, so
the same infrastructure in TOSCA and in RADL gives equal results.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from orbis.model.infrastructure import Position, Template

IGNORED_FIELDS = {"position", "type", "source_file", "version", "warnings", "capabilities",
                  "properties", "inherited", "requirements", "artifacts", "implicit"}  # fmt: skip


def canonical(value: Any) -> Any:
    """Plain, sorted data: dataclasses become dicts without the ignored fields."""
    if isinstance(value, Position):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: canonical(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name not in IGNORED_FIELDS
        }
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def meaning(template: Template) -> dict[str, Any]:
    """What must be equal between two templates that describe the same infrastructure.

    Besides positions, names of types and the like, three things differ only in how each
    language writes them: a component's configuration step (TOSCA derives it from requirements,
    RADL states it: the effective level is compared), a volume's label (a BlockStorage node
    name or "disk.N") and a Compute's elasticity bounds (min/max instances: TOSCA only).
    """
    from orbis.engine.plan import levels  # the plan decides the effective step

    data = canonical(template)
    for key in ("metadata", "description", "inputs"):
        data.pop(key, None)
    for key in ("elastic", "overlay"):  # most templates: no elastic cluster, no overlay
        if data.get(key) is None:
            data.pop(key, None)
    level = levels(template)
    for name, component in data["components"].items():
        component["step"] = level.get(name)
    for compute in data["computes"].values():
        compute.pop("min_instances", None)
        compute.pop("max_instances", None)
        for volume in compute.get("volumes", []):
            volume.pop("name", None)
    return data
