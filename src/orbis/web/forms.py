"""A template's deploy form: fields from its inputs, tabs and constraints, and the server's
check of the values posted back.

Layout and widgets follow the IM Dashboard (../shared/reference/catalogue-format.md §1.1, §3):
tabs in `metadata.tabs` order (a string selector is a regex matched at the start of input
names, a list names inputs, with `{name: {options}}` items), an input in several tabs goes to
the last, inputs in no tab are not shown and keep their default; no tabs: one tab with all.
`valid_values` → a select, integer/float → a number with the bounds of the range constraints,
boolean → a checkbox, a name containing `password` (or `tag_type: password`/`secret`) → a masked
box, list/map → a row editor (form_rows.py; ports for PortSpec entries); `tag_type` text,
textarea, hidden, email, file (an upload whose content is the value), userid (the signed-in
user, read-only), vo_list (one of the user's VOs), access_token (the user's OIDC token, filled
on the server) and random (a hidden random name) are honoured. Every posted value is checked
here against the input's type and constraints (browsers' own checks are only a convenience), so
errors show next to the field. Masked and uploaded values are never written back into a page:
they travel between the form, the plan and the deploy sealed (`Viewer.unseal`).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from orbis.lang.regex import RegexError, compile_user_regex
from orbis.web import form_rows

SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*[KMGTP]i?B\s*$", re.I)
MAX_VALUE_CHARS = 65536
TRUE = {"true", "yes", "1", "on"}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
RANDOM_NAME = r"[A-Za-z0-9][A-Za-z0-9-]{0,62}"
SEALED = "sealed:"  # form field carrying a masked or uploaded value: sealed:<input name>
NOT_SHOWN = ("password", "file")  # kinds whose value never goes back into a page
NO_VO = "None"


@dataclass
class Field:
    """One form control."""

    name: str
    label: str
    kind: str  # checkbox, select, number, text, password, textarea, hidden, email, file,
    # rows, userid, vo_list, access_token
    type: str  # the input's TOSCA type
    value: str = ""
    options: list[str] = field(default_factory=list)
    min: float | None = None
    max: float | None = None
    step: str = "1"
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    required: bool = False
    enabled_by: str | None = None
    error: str = ""
    rows: list[dict[str, str]] = field(default_factory=list)  # kind rows: the row editor's
    row_kind: str = ""  # list, map or ports
    entry: str = "string"  # the entry_schema type of a list or map
    provided: bool = False  # a masked or uploaded value was given (carried sealed)

    @property
    def checked(self) -> bool:
        return self.value.lower() in TRUE

    @property
    def columns(self) -> tuple[str, ...]:
        return form_rows.COLUMNS.get(self.row_kind, ())


@dataclass
class Viewer:
    """Who fills the form, for the fields the server fills (userid, vo_list, access_token), the
    files uploaded with it, and how sealed values (masked, uploaded) are opened."""

    user: str = ""
    vos: list[str] = field(default_factory=list)
    token: str = ""
    uploads: dict[str, bytes] = field(default_factory=dict)
    unseal: Callable[[str, str], str | None] = lambda _name, _sealed: None


@dataclass
class Tab:
    title: str
    fields: list[Field]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return yaml.safe_dump(value, default_flow_style=None, sort_keys=False).strip()
    return str(value)


def _bounds(constraints: list[Any], integer: bool) -> tuple[float | None, float | None]:
    low: float | None = None
    high: float | None = None
    step = 1 if integer else 0
    for item in constraints:
        if not isinstance(item, dict) or len(item) != 1:
            continue
        (kind, arg), = item.items()  # fmt: skip
        try:
            if kind == "in_range" and isinstance(arg, list) and len(arg) == 2:
                low, high = float(arg[0]), float(arg[1])
            elif kind == "greater_or_equal":
                low = float(arg)
            elif kind == "greater_than":
                low = float(arg) + step  # TOSCA's bound is exclusive (the Dashboard's is not)
            elif kind == "less_or_equal":
                high = float(arg)
            elif kind == "less_than":
                high = float(arg) - step
        except (TypeError, ValueError):
            continue
    return low, high


def _constraint(constraints: list[Any], kind: str) -> Any:
    for item in constraints:
        if isinstance(item, dict) and kind in item:
            return item[kind]
    return None


def make_field(name: str, spec: Any, options: dict[str, Any] | None = None) -> Field:
    """The control of one input (`spec` its definition, `options` its tab options)."""
    spec = spec if isinstance(spec, dict) else {}
    options = options or {}
    kind_type = str(spec.get("type") or "string")
    constraints = spec.get("constraints") if isinstance(spec.get("constraints"), list) else []
    label = str(spec.get("description") or name).strip()
    f = Field(name, label, "text", kind_type, _text(spec.get("default")))
    f.required = bool(spec.get("required", False)) and spec.get("default") is None
    f.enabled_by = str(options["enabled_by"]) if options.get("enabled_by") else None
    valid = _constraint(constraints, "valid_values")
    tag_type = str(options.get("tag_type") or "")
    if kind_type == "boolean":
        f.kind = "checkbox"
    elif isinstance(valid, list):
        f.kind = "select"
        f.options = [_text(v) for v in valid]
    elif kind_type in ("list", "map"):
        f.row_kind = form_rows.row_kind(spec) or ""
        f.kind = "rows" if f.row_kind else "textarea"
        f.entry = form_rows.entry_type(spec)
        f.rows = form_rows.rows_of(f.row_kind, spec.get("default")) if f.row_kind else []
    elif kind_type in ("integer", "float"):
        f.kind = "number"
        f.min, f.max = _bounds(constraints, kind_type == "integer")
        f.step = "1" if kind_type == "integer" else "any"
    elif kind_type == "scalar-unit.size":
        f.pattern = r"\d+(\.\d+)?\s*[KMGTPkmgtp]i?[Bb]"
    if f.kind == "text":
        if "password" in name or tag_type in ("password", "secret"):
            f.kind = "password"
        elif tag_type in ("file", "vo_list", "access_token"):
            f.kind = tag_type
        elif tag_type == "textarea":
            f.kind = "textarea"
        elif tag_type == "hidden":
            f.kind = "hidden"
        elif tag_type == "email":
            f.kind = "email"
        elif tag_type == "userid":
            f.kind = "userid"  # the signed-in user's name, not editable
        elif tag_type == "random":
            f.kind = "hidden"  # a random name the user does not choose (the Dashboard's)
            f.pattern = RANDOM_NAME
            f.value = f.value or f"orbis-{secrets.token_hex(4)}"
        f.min_length = _int(_constraint(constraints, "min_length"))
        f.max_length = _int(_constraint(constraints, "max_length"))
        if options.get("pattern"):
            f.pattern = str(options["pattern"])
    return f


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def tabs_of(document: dict[str, Any]) -> list[Tab]:
    """The form of a (composed) template document: tabs of fields, in order."""
    topology: dict[str, Any] = _mapping(document.get("topology_template"))
    inputs: dict[str, Any] = _mapping(topology.get("inputs"))
    meta: dict[str, Any] = _mapping(document.get("metadata"))
    tabs: dict[str, Any] = _mapping(meta.get("tabs"))
    if not tabs:
        return [Tab("Inputs", [make_field(n, s) for n, s in inputs.items()])] if inputs else []
    placed: dict[str, tuple[str, dict[str, Any]]] = {}  # input → (tab, options); last wins
    for title, selector in tabs.items():
        if isinstance(selector, str):
            try:
                regex = compile_user_regex(selector)
            except RegexError:
                continue
            for name in inputs:
                found = regex.search(name)
                if found is not None and found.start() == 0:  # re.match: anchored at the start
                    placed.pop(name, None)
                    placed[name] = (str(title), {})
        elif isinstance(selector, list):
            for item in selector:
                name, opts = (next(iter(item.items())) if isinstance(item, dict) and item
                              else (item, {}))  # fmt: skip
                if name in inputs:
                    placed.pop(name, None)
                    placed[name] = (str(title), opts if isinstance(opts, dict) else {})
    out: list[Tab] = []
    for title in tabs:
        fields = [make_field(n, inputs[n], o) for n, (t, o) in placed.items() if t == str(title)]
        order = list(inputs)
        fields.sort(key=lambda f: order.index(f.name))
        if fields:
            out.append(Tab(str(title), fields))
    return out


def fields_of(tabs: list[Tab]) -> list[Field]:
    return [f for tab in tabs for f in tab.fields]


def prefill(tabs: list[Tab], params: Any) -> None:
    """The Dashboard's links that fill a form: a query parameter named like an input sets its
    field (lists, maps and ports as JSON); never a masked, uploaded or server-filled one. Only
    what is shown changes: the posted form is checked as any other."""
    for f in fields_of(tabs):
        raw = params.get(f.name)
        if not isinstance(raw, str) or len(raw) > MAX_VALUE_CHARS or f.kind in (
                *NOT_SHOWN, "userid", "access_token"):  # fmt: skip
            continue
        if f.kind == "rows":
            try:
                f.rows = form_rows.rows_of(f.row_kind, json.loads(raw))
            except ValueError:
                continue
        else:
            f.value = raw


def read_values(tabs: list[Tab], form: Any, viewer: Viewer | None = None
                ) -> tuple[dict[str, Any], dict[str, str]]:  # fmt: skip
    """(input values, errors by input name) from a posted form. Fields not posted (disabled by
    `enabled_by`, or a checkbox left clear) are handled as a browser posts them; `userid`,
    `access_token` and the choices of `vo_list` come from the `viewer`, whatever was posted."""
    viewer = viewer or Viewer()
    fields = fields_of(tabs)
    by_name = {f.name: f for f in fields}
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        if f.enabled_by and by_name.get(f.enabled_by) is not None:
            switch = by_name[f.enabled_by]
            raw_switch = form.get(switch.name)
            on = (str(raw_switch or "").lower() in TRUE) if switch.kind == "checkbox" else \
                str(raw_switch or "").strip() not in ("", "0", "false")  # fmt: skip
            if not on:
                continue  # disabled: keeps the template's default
        try:
            found = _read_one(f, form, viewer)
        except ValueError as exc:
            errors[f.name] = f.error = str(exc)
            continue
        if found is not _KEEP:
            values[f.name] = found
    return values, errors


_KEEP = object()  # nothing posted: the input keeps its default


def _read_one(f: Field, form: Any, viewer: Viewer) -> Any:
    """The value of one field in the posted form, _KEEP, or ValueError."""
    if f.kind == "userid":
        f.value = viewer.user
        return viewer.user
    if f.kind == "access_token":
        return viewer.token  # never kept in the field: the page must not show it
    if f.kind == "checkbox":
        f.value = "true" if str(form.get(f.name) or "").lower() in TRUE else "false"
        return f.value == "true"
    if f.kind == "rows":
        f.rows = form_rows.posted_rows(form, f.name, f.row_kind)
        value = form_rows.value_of(f.row_kind, f.rows, f.entry)
        if f.row_kind == "ports":
            value = form_rows.ports_value(f.type, value)
        if f.required and not value:
            raise ValueError("a value is required")
        return value
    if f.kind in NOT_SHOWN:
        text = _not_shown(f, form, viewer)
        if text is None:  # nothing typed or uploaded: the default stays
            if f.required:
                raise ValueError("a value is required")
            return _KEEP
        f.value, f.provided = text, True
        return check(f, text)
    raw = form.get(f.name)
    if raw is None or not isinstance(raw, str):
        return _KEEP
    f.value = raw
    if f.kind == "vo_list":
        if raw not in (*viewer.vos, NO_VO, ""):
            raise ValueError("must be one of your VOs: " + (", ".join(viewer.vos) or "you have "
                             "none (sign in with your VO's issuer)"))  # fmt: skip
        return "" if raw == NO_VO else raw
    return check(f, raw)


def _not_shown(f: Field, form: Any, viewer: Viewer) -> str | None:
    """A masked or uploaded value: typed (or uploaded) now, else the sealed one carried from the
    previous page, else None."""
    if f.kind == "file":
        data = viewer.uploads.get(f.name)
        if data:
            if len(data) > MAX_VALUE_CHARS:
                raise ValueError(f"the file is larger than {MAX_VALUE_CHARS} bytes")
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError("the file must be text (UTF-8)") from None
    else:
        typed = form.get(f.name)
        if isinstance(typed, str) and typed:
            return typed
    sealed = form.get(SEALED + f.name)
    if isinstance(sealed, str) and sealed:
        opened = viewer.unseal(f.name, sealed)
        if opened is None:
            raise ValueError("the value given before could not be read back (the page is too "
                             "old): give it again")  # fmt: skip
        return opened
    return None


def check(f: Field, text: str) -> Any:
    """The value of `text` for field `f`, or ValueError saying what is wrong."""
    if len(text) > MAX_VALUE_CHARS:
        raise ValueError(f"longer than {MAX_VALUE_CHARS} characters")
    if not text.strip():
        if f.required:
            raise ValueError("a value is required")
        if f.type in ("integer", "float", "list", "map", "scalar-unit.size"):
            raise ValueError("a value is required")
        return text
    value: Any = text
    if f.type == "integer":
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError("must be a whole number") from None
    elif f.type == "float":
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError("must be a number") from None
    elif f.type in ("list", "map"):
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ValueError(f"must be a YAML {f.type}") from None
        if not isinstance(value, list if f.type == "list" else dict):
            raise ValueError(f"must be a YAML {f.type}")
    elif f.type == "scalar-unit.size" and not SIZE.match(text):
        raise ValueError("must be a size such as 20 GB or 512 MiB")
    if f.kind == "email" and not EMAIL.fullmatch(text.strip()):
        raise ValueError("must be an e-mail address")
    if f.kind == "select" and text not in f.options:
        raise ValueError(f"must be one of {', '.join(f.options)}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if f.min is not None and value < f.min:
            raise ValueError(f"must be at least {_num(f.min)}")
        if f.max is not None and value > f.max:
            raise ValueError(f"must be at most {_num(f.max)}")
    if isinstance(value, str):
        if f.min_length is not None and len(value) < f.min_length:
            raise ValueError(f"must be at least {f.min_length} characters long")
        if f.max_length is not None and len(value) > f.max_length:
            raise ValueError(f"must be at most {f.max_length} characters long")
        if f.pattern:
            try:
                matched = compile_user_regex(f.pattern).fullmatch(value)
            except RegexError:
                matched = True
            if not matched:
                raise ValueError(f"must match the pattern {f.pattern}")
    return value


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
