"""TOSCA primitive types: parsing/coercing values and checking constraints.

Functions return an error message (str) or None, so callers can attach positions.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from orbis.lang.limits import safe_load_bounded
from orbis.lang.regex import RegexError, compile_user_regex

SIZE_UNITS: dict[str, int] = {  # TOSCA: kB/KB = 1000, KiB = 1024 (units are case-insensitive)
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
    "tb": 1000**4,
    "tib": 1024**4,
}
_SCALAR_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]+)\s*$")
_TRUE = {"true", "yes", "on", "y", "1"}
_FALSE = {"false", "no", "off", "n", "0"}
PRIMITIVES = {
    "string", "integer", "float", "boolean", "list", "map", "version", "timestamp", "range",
    "scalar-unit.size", "scalar-unit.time", "scalar-unit.frequency", "any",
}  # fmt: skip


def size_to_bytes(value: Any) -> int | None:
    """'4 GB' → 4000000000; None if not a scalar-unit.size."""
    if isinstance(value, bool) or not isinstance(value, str):
        return None
    match = _SCALAR_RE.match(value)
    if not match or match.group(2).lower() not in SIZE_UNITS:
        return None
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()])


def bare_megabytes(value: Any) -> int | None:
    """IM reads a size written without a unit (a number, or its text) as megabytes (10^6 B):
    the bytes of such a value, None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value * 10**6)
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]*\.?[0-9]+\s*", value):
        return int(float(value) * 10**6)
    return None


def im_size_to_bytes(value: Any) -> int | None:
    """A size property's bytes as IM computes them: a scalar-unit.size, or a bare number in MB."""
    found = size_to_bytes(value)
    return found if found is not None else bare_megabytes(value)


def coerce(value: Any, type_name: str, from_text: bool) -> tuple[Any, str | None]:
    """Check (and, for command-line text, convert) a value of a declared TOSCA type.

    Returns (value, error). Unknown/complex types (data types) are accepted as they are, except
    that text given on the command line is parsed as YAML/JSON for them.
    """
    if value is None:
        return None, None
    kind = type_name or "string"
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value, None
        if from_text and isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            return int(value), None
        return value, f"{value!r} is not an integer"
    if kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value), None
        if from_text and isinstance(value, str):
            try:
                return float(value), None
            except ValueError:
                pass
        return value, f"{value!r} is not a float"
    if kind == "boolean":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE, None
        return value, f"{value!r} is not a boolean (use true/false or yes/no)"
    if kind == "scalar-unit.size":
        if size_to_bytes(value) is None:
            units = "B, kB, KiB, MB, MiB, GB, GiB, TB, TiB"
            return value, f"{value!r} is not a scalar-unit.size (a number and one of {units})"
        return value, None
    if kind in ("list", "map"):
        wanted = list if kind == "list" else dict
        if from_text and isinstance(value, str):
            try:
                value = safe_load_bounded(value)
            except yaml.YAMLError:
                return value, f"{value!r} is not a {kind} (give it as JSON or YAML)"
        if not isinstance(value, wanted):
            return value, f"{value!r} is not a {kind}"
        return value, None
    if kind in ("string", "version", "timestamp"):
        if isinstance(value, list | dict):
            return value, f"{value!r} is not a {kind}"
        return value if isinstance(value, str) else str(value), None  # numbers are fine
    if from_text and isinstance(value, str) and kind not in PRIMITIVES:
        try:  # a complex data type given on the command line
            return safe_load_bounded(value), None
        except yaml.YAMLError:
            return value, f"{value!r} is not valid YAML/JSON for type {kind}"
    return value, None


def _comparable(value: Any, type_name: str) -> Any:
    return size_to_bytes(value) if type_name == "scalar-unit.size" else value


def check_constraint(value: Any, type_name: str, constraint: Any) -> str | None:
    """Error message if `value` violates one constraint clause ({operator: argument})."""
    if not isinstance(constraint, dict) or len(constraint) != 1:
        return f"malformed constraint {constraint!r}"
    op, arg = next(iter(constraint.items()))
    v = _comparable(value, type_name)
    try:
        if op == "equal":
            ok = v == _comparable(arg, type_name)
        elif op in ("greater_than", "greater_or_equal", "less_than", "less_or_equal"):
            a = _comparable(arg, type_name)
            ok = {
                "greater_than": lambda: v > a,
                "greater_or_equal": lambda: v >= a,
                "less_than": lambda: v < a,
                "less_or_equal": lambda: v <= a,
            }[op]()
        elif op == "in_range":
            low, high = (_comparable(x, type_name) for x in arg)
            ok = low <= v <= high
        elif op == "valid_values":
            ok = v in [_comparable(x, type_name) for x in arg]
        elif op == "length":
            ok = len(value) == arg
        elif op == "min_length":
            ok = len(value) >= arg
        elif op == "max_length":
            ok = len(value) <= arg
        elif op == "pattern":
            try:
                regex = compile_user_regex(str(arg))  # RE2: linear time, whatever the pattern
                ok = isinstance(value, str) and regex.fullmatch(value) is not None
            except RegexError as exc:
                return f"constraint pattern: {exc}"
        else:
            return f"unknown constraint '{op}'"
    except (TypeError, ValueError):
        return f"constraint {op}: {arg!r} cannot be checked against {value!r}"
    if ok:
        return None
    wants = {
        "equal": "be equal to",
        "greater_than": "be greater than",
        "greater_or_equal": "be greater than or equal to",
        "less_than": "be less than",
        "less_or_equal": "be less than or equal to",
        "in_range": "be in range",
        "valid_values": "be one of",
        "length": "have length",
        "min_length": "have length at least",
        "max_length": "have length at most",
        "pattern": "match pattern",
    }[op]
    return f"{value!r} does not satisfy {op}: must {wants} {arg!r}"
