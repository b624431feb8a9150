"""Features of one section merged by name (reference §1.3): numbers become intervals that are
intersected, strings must agree, `contains` entries merge by their `name`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orbis.lang.errors import Problems
from orbis.lang.radl.ast import Feature, Soft
from orbis.model.infrastructure import Position

Number = int | float


@dataclass
class Value:
    name: str
    kind: str  # num | str | list | contains
    pos: Position | None = None
    low: Number | None = None
    high: Number | None = None
    low_pos: Position | None = None
    high_pos: Position | None = None
    unit: str | None = None
    text: str | None = None  # the number as written (when = and without unit)
    string: str | None = None
    items: list[str] = field(default_factory=list)
    entries: dict[str, dict[str, Value]] = field(default_factory=dict)  # contains, by name

    def number(self) -> Number | None:
        return self.low if self.low is not None else self.high

    def plain(self) -> Any:
        """The value as IM's JSON form writes it (bounds are handled by the caller)."""
        if self.kind == "num":
            return self.number()
        if self.kind == "str":
            return self.string
        if self.kind == "list":
            return list(self.items)
        return [{k: v.plain() for k, v in entry.items()} for entry in self.entries.values()]


@dataclass
class Merged:
    values: dict[str, Value] = field(default_factory=dict)
    softs: list[tuple[Number, dict[str, Value], Position | None]] = field(default_factory=list)


def _show(value: Value) -> str:
    if value.kind == "num":
        if value.low == value.high:
            return f"= {value.low}"
        parts = [f">= {value.low}"] if value.low is not None else []
        return " and ".join([*parts, *([f"<= {value.high}"] if value.high is not None else [])])
    if value.kind == "str":
        return f"'{value.string}'"
    return "a list" if value.kind == "list" else "contains (…)"


def _new(feature: Feature, problems: Problems) -> Value:
    v = feature.value
    if feature.op == "contains":
        value = Value(feature.name, "contains", feature.pos)
        entry = merge(v, problems).values
        key = entry.get("name")
        if key is None or key.kind != "str" or key.string is None:
            problems.add(feature.pos, f"{feature.name} contains (…) needs name = '…'")
            return value
        value.entries[key.string] = entry
        return value
    if isinstance(v, bool) or not isinstance(v, int | float):
        if isinstance(v, list):
            return Value(feature.name, "list", feature.pos, items=[str(i) for i in v])
        return Value(feature.name, "str", feature.pos, string=str(v))
    value = Value(feature.name, "num", feature.pos, unit=feature.unit)
    if feature.op in ("=", ">="):
        value.low, value.low_pos = v, feature.pos
    if feature.op in ("=", "<="):
        value.high, value.high_pos = v, feature.pos
    if feature.op == "=" and feature.unit is None:
        value.text = feature.text
    return value


def _combine(old: Value, new: Value, problems: Problems) -> None:
    where = new.pos
    if old.kind != new.kind:
        problems.add(where, f"{new.name}: {_show(new)} conflicts with {_show(old)} (at {old.pos})")
    elif old.kind == "num":
        low, high = old.low, old.high
        if new.low is not None and (low is None or new.low > low):
            old.low, old.low_pos = new.low, new.low_pos
        if new.high is not None and (high is None or new.high < high):
            old.high, old.high_pos = new.high, new.high_pos
        if old.low is not None and old.high is not None and old.low > old.high:
            other = old.high_pos if old.low_pos == where else old.low_pos
            message = f"{new.name}: {_show(new)} conflicts with an earlier bound (at {other})"
            problems.add(where, message, "the bounds of a number must overlap")
            old.low, old.high = low, high
        old.text = new.text if old.low == old.high and new.text else old.text
    elif old.kind == "str" and old.string != new.string:
        problems.add(where, f"{new.name}: {_show(new)} conflicts with {_show(old)} (at {old.pos})")
    elif old.kind == "list" and old.items != new.items:
        problems.add(where, f"{new.name}: the list conflicts with the one at {old.pos}")
    elif old.kind == "contains":
        for key, entry in new.entries.items():
            if key not in old.entries:
                old.entries[key] = entry
                continue
            for sub in entry.values():
                if sub.name in old.entries[key]:
                    _combine(old.entries[key][sub.name], sub, problems)
                else:
                    old.entries[key][sub.name] = sub


def merge(features: list[Feature] | list[Feature | Soft], problems: Problems) -> Merged:
    out = Merged()
    for feature in features:
        if isinstance(feature, Soft):
            group = merge(feature.features, problems)
            out.softs.append((feature.weight, group.values, feature.pos))
            continue
        value = _new(feature, problems)
        if feature.name in out.values:
            _combine(out.values[feature.name], value, problems)
        else:
            out.values[feature.name] = value
    return out
