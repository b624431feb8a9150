"""The `inputs` section: defaults, command-line overrides, types and constraints."""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from orbis.config import limits
from orbis.lang.errors import suggest
from orbis.lang.tosca.context import Context
from orbis.lang.tosca.datatypes import check_constraint, coerce
from orbis.lang.yaml_positions import PMap, child_pos, plain
from orbis.model.infrastructure import Position

_RANDOM = re.compile(r"^random\((\d+)\)$")
_ALPHANUM = string.ascii_letters + string.digits


def random_text(ctx: Context, spec: str, pos: Position) -> str:
    """IM's `random(N)` default: N random alphanumerics, N bounded (ORBIS_MAX_RANDOM_LENGTH)."""
    digits = spec[len("random(") : -1]
    limit = limits().max_random_length
    if len(digits) > 6 or int(digits) > limit:  # checked before int() of a huge number
        ctx.problems.add(pos, f"limit: random({digits[:12]}{'...' if len(digits) > 12 else ''})"
                         f" is longer than {limit} characters (ORBIS_MAX_RANDOM_LENGTH)")
        return ""
    return "".join(secrets.choice(_ALPHANUM) for _ in range(int(digits)))


def load_inputs(ctx: Context, section: Any, overrides: dict[str, Any]) -> None:
    """Fill ctx.inputs with the final value of every declared input."""
    defs = section if isinstance(section, PMap) else PMap(ctx.pos())
    if section is not None and not isinstance(section, dict):
        ctx.problems.add(child_pos(section, 0, ctx.pos()), "'inputs' must be a mapping")
    for name in overrides:
        if name not in defs:
            hint = suggest(name, defs) or f"declared inputs: {', '.join(defs) or 'none'}"
            where = defs.pos if isinstance(section, PMap) else None
            ctx.problems.add(where, f"unknown input '{name}' given on the command line", hint)
    for name, definition in defs.items():
        key_pos = defs.key_pos(name)
        ctx.input_positions[name] = key_pos
        if not isinstance(definition, PMap):
            ctx.problems.add(
                defs.value_pos(name), f"input '{name}' must be a mapping (type, default...)"
            )
            continue
        type_name = str(definition.get("type") or "string")
        if name in overrides:
            value, pos, from_text = overrides[name], key_pos, isinstance(overrides[name], str)
            origin = f"input '{name}' (given on the command line)"
        elif "default" in definition:
            value, pos, from_text = definition["default"], definition.value_pos("default"), False
            origin = f"input '{name}'"
            if type_name == "string" and isinstance(value, str) and _RANDOM.match(value.strip()):
                value = random_text(ctx, value.strip(), pos)
        else:
            if definition.get("required", True) not in (False, "false", "no"):
                # IM's parser only logs that a required input was not provided and goes on
                # with null (a property set from it is left unset): warn, do not refuse
                ctx.problems.warn(
                    key_pos,
                    f"required input '{name}' has no value (no default, none given): it is "
                    f"null; give it a default or pass -i {name}=<value>",
                )
            ctx.inputs[name] = None
            continue
        value, error = coerce(value, type_name, from_text)
        if error:
            ctx.problems.add(pos, f"{origin}: {error}")
            ctx.inputs[name] = None  # already reported: don't cascade into every use
            continue
        if isinstance(value, list | dict):
            _check_entries(ctx, name, value, definition, pos)
        constraints = definition.get("constraints") or []
        for i, constraint in enumerate(constraints if isinstance(constraints, list) else []):
            error = check_constraint(value, type_name, constraint)
            if error and name not in overrides and "does not satisfy" in error:
                # IM deploys a default that breaks its own constraints (e.g. '1 GB' in an
                # HTCondor template): warn and go on, as IM does; a value given is refused
                ctx.problems.warn(pos, f"{origin}: the default {error}; it is used as it is")
            elif error:
                ctx.problems.add(pos, f"{origin}: {error}", _where(constraints, i))
        ctx.inputs[name] = plain(value)


def _check_entries(ctx: Context, name: str, value: Any, definition: Any, pos: Any) -> None:
    """entry_schema of list/map inputs (primitive entry types only)."""
    schema = definition.get("entry_schema")
    entry_type = schema.get("type") if isinstance(schema, dict) else schema
    if not isinstance(entry_type, str):
        return
    entries = value.values() if isinstance(value, dict) else value
    for entry in entries:
        _, error = coerce(entry, entry_type, False)
        if error:
            ctx.problems.add(pos, f"input '{name}': entry {error}")
            return


def _where(constraints: Any, index: int) -> str:
    pos = child_pos(constraints, index)
    return f"constraint declared at line {pos.line}" if pos else ""
