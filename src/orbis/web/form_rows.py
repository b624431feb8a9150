"""Row editors for list and map inputs (the IM Dashboard's "Add" lists, catalogue-format.md
§3.4): a list of scalars is one column, a map two (key, value), ports (`PortSpec` entries,
`tosca.datatypes.network.PortSpec`) four (port or range, target, protocol, remote CIDR).

Rows are posted as `<input>[<i>].<column>`; they are read back in the order of `i` as numbers
(the Dashboard sorts them as strings, so row 10 came before row 2), blank rows are skipped, and
every entry is checked here: the browser only adds and removes rows.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

MAX_ROWS = 200
PORTSPEC = ("PortSpec", "tosca.datatypes.network.PortSpec")
PROTOCOLS = ("tcp", "udp", "icmp")
COLUMNS = {"list": ("value",), "map": ("key", "value"),
           "ports": ("port", "target", "protocol", "cidr")}  # fmt: skip


def entry_type(spec: dict[str, Any]) -> str:
    schema = spec.get("entry_schema")
    if isinstance(schema, dict):
        return str(schema.get("type") or "string")
    return str(schema or "string")


def row_kind(spec: dict[str, Any]) -> str | None:
    """"list", "map" or "ports" when a row editor fits the input; None for a YAML text area
    (entries that are themselves lists or maps of another type)."""
    kind = str(spec.get("type") or "")
    if kind not in ("list", "map"):
        return None
    entry = entry_type(spec)
    default = spec.get("default")
    if entry in PORTSPEC:
        return "ports"
    if entry not in ("string", "integer", "float", "boolean", "scalar-unit.size", "version"):
        return None
    values = list(default.values()) if isinstance(default, dict) else \
        default if isinstance(default, list) else []  # fmt: skip
    if any(isinstance(v, list | dict) for v in values):
        return None
    return kind


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def rows_of(kind: str, value: Any) -> list[dict[str, str]]:
    """The rows showing `value` (a list or map) in a row editor of `kind`."""
    if kind == "list":
        return [{"value": _text(v)} for v in (value if isinstance(value, list) else [])]
    if kind == "map":
        items = value.items() if isinstance(value, dict) else []
        return [{"key": str(k), "value": _text(v)} for k, v in items]
    entries = value.values() if isinstance(value, dict) else value if isinstance(value, list) \
        else []  # fmt: skip
    rows = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        source_range = entry.get("source_range")
        port = (f"{source_range[0]}:{source_range[1]}" if isinstance(source_range, list)
                and len(source_range) == 2 else _text(entry.get("source")))  # fmt: skip
        rows.append({"port": port, "target": _text(entry.get("target")),
                     "protocol": _text(entry.get("protocol") or "tcp"),
                     "cidr": _text(entry.get("remote_cidr"))})  # fmt: skip
    return rows


def posted_rows(form: Any, name: str, kind: str) -> list[dict[str, str]]:
    """The rows posted for input `name`, in row order, blank ones left out (ValueError beyond
    MAX_ROWS)."""
    pattern = re.compile(re.escape(name) + r"\[(\d{1,6})\]\.([a-z]+)")
    found: dict[int, dict[str, str]] = {}
    for key in form:
        match = pattern.fullmatch(key)
        if match and match.group(2) in COLUMNS[kind]:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = str(form.get(key) or "")
            if len(found) > MAX_ROWS:
                raise ValueError(f"at most {MAX_ROWS} rows")
    rows = []
    for index in sorted(found):
        row = {c: found[index].get(c, "").strip() for c in COLUMNS[kind]}
        if kind == "ports":
            row["protocol"] = row["protocol"] or "tcp"
            if not (row["port"] or row["target"] or row["cidr"]):
                continue
        elif not any(row.values()):
            continue
        rows.append(row)
    return rows


def scalar(text: str, kind: str) -> Any:
    """An entry's value for its `entry_schema` type (ValueError saying what is wrong)."""
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{text!r} is not true or false")
        return text.lower() == "true"
    return text


def value_of(kind: str, rows: list[dict[str, str]], entry: str) -> Any:
    """The list or map the rows stand for (ValueError naming the first wrong row)."""
    if kind == "list":
        return [_row(i, scalar, r["value"], entry) for i, r in enumerate(rows, 1)]
    if kind == "map":
        out: dict[str, Any] = {}
        for i, r in enumerate(rows, 1):
            if not r["key"]:
                raise ValueError(f"row {i}: a key is required")
            if r["key"] in out:
                raise ValueError(f"row {i}: the key {r['key']!r} is given twice")
            out[r["key"]] = _row(i, scalar, r["value"], entry)
        return out
    ports = [_row(i, port_spec, r) for i, r in enumerate(rows, 1)]
    return ports


def _row(index: int, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except ValueError as exc:
        raise ValueError(f"row {index}: {exc}") from None


def _port(text: str, what: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{what} {text!r} is not a port (1-65535)")
    return int(text)


def port_spec(row: dict[str, str]) -> dict[str, Any]:
    """A PortSpec from one row: `source` (or `source_range` for `a:b`), protocol, and the
    optional `target` and `remote_cidr`."""
    spec: dict[str, Any] = {"protocol": row["protocol"]}
    if row["protocol"] not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
    low, sep, high = row["port"].partition(":")
    if sep:
        first, last = _port(low, "port"), _port(high, "port")
        if first > last:
            raise ValueError(f"the range {row['port']} ends before it starts")
        spec["source_range"] = [first, last]
    else:
        spec["source"] = _port(row["port"], "port")
    if row["target"]:
        spec["target"] = _port(row["target"], "target port")
    if row["cidr"]:
        try:
            spec["remote_cidr"] = str(ipaddress.ip_network(row["cidr"], strict=False))
        except ValueError:
            raise ValueError(f"{row['cidr']!r} is not a CIDR such as 10.0.0.0/8") from None
    return spec


def ports_value(kind_type: str, ports: list[dict[str, Any]]) -> Any:
    """A `map` input of PortSpecs is keyed `port_<source>` (the Dashboard's names); a `list`
    keeps them in order."""
    if kind_type == "list":
        return ports
    out: dict[str, Any] = {}
    for spec in ports:
        first = spec.get("source") or "_".join(str(p) for p in spec["source_range"])
        key = f"port_{first}" + ("" if spec["protocol"] == "tcp" else f"_{spec['protocol']}")
        if key in out:
            raise ValueError(f"the port {first}/{spec['protocol']} is given twice")
        out[key] = spec
    return out
