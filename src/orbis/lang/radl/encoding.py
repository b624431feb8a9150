"""Features as plain data, the way IM's RADL JSON form writes them (reference §2).

Used for RADL JSON and for the features Orbis keeps without a field of their own
(`Compute.features`, `Network.properties`, description/ansible in `Template.metadata`):
`k: v` for `=`, `k_min`/`k_max` for bounds, a list of strings for a list value, a list of
objects for `contains` entries, and `softs: [{weight, items}]` for soft groups.
"""

from __future__ import annotations

from typing import Any

from orbis.lang.radl.ast import Feature, Soft
from orbis.lang.radl.values import Merged, Value
from orbis.model.infrastructure import Position

SOFTS = "softs"


def encode_value(value: Value, out: dict[str, Any]) -> None:
    name = value.name
    if value.kind == "num" and value.low != value.high:
        if value.low is not None:
            out[f"{name}_min"] = value.low
        if value.high is not None:
            out[f"{name}_max"] = value.high
    else:
        out[name] = value.plain()


def encode(values: dict[str, Value]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for value in values.values():
        encode_value(value, out)
    return out


def encode_merged(merged: Merged, skip: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    out = encode({k: v for k, v in merged.values.items() if k not in skip})
    if merged.softs:
        out[SOFTS] = [{"weight": w, "items": encode(vals)} for w, vals, _ in merged.softs]
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def decode(data: dict[str, Any], pos: Position | None = None) -> list[Feature | Soft]:
    """Plain features back into written features (the inverse of `encode_merged`)."""
    out: list[Feature | Soft] = []
    for key, value in data.items():
        if key == SOFTS and isinstance(value, list):
            for group in value:
                if isinstance(group, dict):
                    items = decode(dict(group.get("items") or {}), pos)
                    plain = [f for f in items if isinstance(f, Feature)]
                    out.append(Soft(group.get("weight", 0), plain, pos))
            continue
        out.extend(decode_one(str(key), value, pos))
    return out


def decode_one(key: str, value: Any, pos: Position | None) -> list[Feature]:
    """One plain key → its features (a list of objects is one contains entry each)."""
    if _is_number(value) and key.endswith(("_min", "_max")):
        op = ">=" if key.endswith("_min") else "<="
        return [Feature(key[:-4], op, value, pos)]
    if isinstance(value, bool):
        return [Feature(key, "=", "yes" if value else "no", pos)]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [f for v in value for f in decode_one(key, v, pos)]
    if isinstance(value, dict):
        subs = [f for f in decode(value, pos) if isinstance(f, Feature)]
        return [Feature(key, "contains", subs, pos)]
    if isinstance(value, list):
        return [Feature(key, "=", [str(v) for v in value], pos)]
    if _is_number(value):
        return [Feature(key, "=", value, pos)]
    return [Feature(key, "=", "" if value is None else str(value), pos)]
