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
    """What must be equal between two templates that describe the same infrastructure."""
    data = canonical(template)
    data.pop("metadata", None)
    data.pop("description", None)
    data.pop("inputs", None)
    return data
