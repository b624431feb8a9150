"""Node and capability property values: checked against their definitions, functions resolved."""

from __future__ import annotations

from typing import Any

from orbis.lang.errors import suggest
from orbis.lang.tosca.context import Context, NodeTemplate
from orbis.lang.tosca.datatypes import bare_megabytes, coerce
from orbis.lang.tosca.functions import Resolver
from orbis.lang.tosca.registry import shipped_registry
from orbis.lang.yaml_positions import PMap, child_pos
from orbis.model.infrastructure import Function

_CHECKED_TYPES = {"integer", "float", "boolean", "scalar-unit.size", "list", "map", "string"}
_OPERATORS = {"equal", "greater_than", "greater_or_equal", "less_than", "less_or_equal"}
_CALLS = {"get_input", "get_property", "get_attribute", "concat", "token", "join"}


def _has_function(value: Any) -> bool:
    if isinstance(value, Function):
        return True
    if isinstance(value, dict):
        return any(_has_function(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_function(v) for v in value)
    return False


def resolve_values(
    ctx: Context, resolver: Resolver, node: NodeTemplate, given: Any, defs: dict[str, Any],
    what: str, check_required: bool, cap: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Given values (+ defaults of unset ones) with functions resolved; unknown names reported."""
    given = given if isinstance(given, dict) else {}
    out: dict[str, Any] = {}
    for name, definition in defs.items():
        definition = definition if isinstance(definition, dict) else {}
        if name in given:
            pos = child_pos(given, name)
            value = resolver.resolve(given[name], pos, node.name)
            _check_type(ctx, value, definition, pos, f"property '{name}' of {what}",
                        by_function=_is_call(given[name]))  # fmt: skip
            out[name] = value
        elif "default" in definition:
            out[name] = resolver.resolve(definition["default"], node.position, node.name)
        elif check_required and definition.get("required", True) not in (False, "false", "no"):
            ctx.problems.add(node.position, f"missing required property '{name}' of {what}")
    for name in given:
        if name not in defs:
            pos = given.key_pos(name) if isinstance(given, PMap) else node.position
            if _indigo_hint(ctx, node, cap, str(name)):
                # IM templates put INDIGO's os.image / scalable.count on plain Compute too, and
                # IM deploys them: accept what the INDIGO Compute defines, and say so.
                out[name] = resolver.resolve(given[name], pos, node.name)
                ctx.problems.warn(
                    pos,
                    f"property '{name}' of {what} is defined by "
                    "tosca.nodes.indigo.Compute; accepted as IM does",
                )
                continue
            hint = suggest(str(name), defs)
            ctx.problems.add(pos, f"unknown property '{name}' of {what}", hint)
    return out


def _indigo_hint(ctx: Context, node: NodeTemplate, cap: str | None, name: str) -> str:
    """Normative Compute lacks IM's usual extras (os.image, scalable.count): say where they are."""
    if not cap or not ctx.registry.derives("node_types", node.type, "tosca.nodes.Compute"):
        return ""
    indigo = shipped_registry(("indigo",))
    cap_def = indigo.merged("node_types", "tosca.nodes.indigo.Compute", "capabilities").get(cap)
    if cap_def is None or name not in indigo.capability_properties(capability_type(cap_def)):
        return ""
    return "use type tosca.nodes.indigo.Compute (INDIGO custom types), which defines it"


def _is_call(written: Any) -> bool:
    return isinstance(written, dict) and len(written) == 1 and next(iter(written)) in _CALLS


def _check_type(
    ctx: Context, value: Any, definition: dict[str, Any], pos: Any, what: str,
    by_function: bool = False,
) -> None:  # fmt: skip
    type_name = definition.get("type")
    if type_name not in _CHECKED_TYPES or value is None or _has_function(value):
        return
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _OPERATORS:
        value = next(iter(value.values()))  # IM's {greater_or_equal: 4} style requirements
    if by_function and type_name == "scalar-unit.size" and bare_megabytes(value) is not None:
        # tosca-parser does not check a value given by a function; IM then reads it as MB
        ctx.problems.warn(pos, f"{what}: {value!r} has no unit: read as {value} MB, as IM does")
        return
    _, error = coerce(value, str(type_name), False)
    if error:
        ctx.problems.add(pos, f"{what}: {error}")


# OSCAR FDL fields (and Lambda settings) a FaaS.Function may carry that the shipped type sets
# lack: accepted on every function node (docs/functions.md, docs/compatibility.md)
FUNCTION_EXTRAS: dict[str, Any] = {
    "replicas": {"type": "list", "required": False},
    "log_level": {"type": "string", "required": False},
    "secrets": {"type": "map", "required": False},
    "timeout": {"type": "integer", "required": False},
    "api_gateway": {"type": "boolean", "required": False},
    # newer OSCAR's FDL (providers/oscar/fdl_newer.py checks the values)
    **{name: {"type": kind, "required": False} for name, kind in (
        ("total_memory", "string"), ("total_cpu", "float"), ("synchronous", "map"),
        ("delegation", "string"), ("rescheduler_threshold", "integer"),
        ("file_stage_in", "boolean"), ("image_prefetch", "boolean"), ("annotations", "map"),
        ("labels", "map"), ("vo", "string"), ("visibility", "string"),
        ("allowed_users", "list"), ("isolation_level", "string"), ("mount", "map"),
        ("volume", "map"), ("interlink_node_name", "string"))},
}


def node_properties(ctx: Context, resolver: Resolver, node: NodeTemplate) -> dict[str, Any]:
    defs = ctx.registry.merged("node_types", node.type, "properties")
    if node.kind == "function":
        defs = {**FUNCTION_EXTRAS, **defs}
    if node.kind == "storage" and isinstance(defs.get("size"), dict):
        # IM attaches an existing volume_id without a size, and ignores a disk with neither
        defs = {**defs, "size": {**defs["size"], "required": False}}
    given = node.raw.get("properties")
    if given is not None and not isinstance(given, dict):
        ctx.problems.add(node.raw.value_pos("properties"), "'properties' must be a mapping")
    what = f"node '{node.name}' ({node.type})"
    return resolve_values(ctx, resolver, node, given, defs, what, check_required=True)


def capability_type(definition: Any) -> str:
    return str(definition if isinstance(definition, str) else (definition or {}).get("type", ""))


def node_capabilities(
    ctx: Context, resolver: Resolver, node: NodeTemplate, with_defaults: bool
) -> dict[str, dict[str, Any]]:
    """{capability: {property: value}} of the capabilities the template sets (property defaults
    included); `with_defaults` adds the type's other capabilities with their defaults."""
    defs = ctx.registry.merged("node_types", node.type, "capabilities")
    given = node.raw.get("capabilities")
    if given is None:
        given = PMap(node.position or ctx.pos())
    if not isinstance(given, PMap):
        ctx.problems.add(node.raw.value_pos("capabilities"), "'capabilities' must be a mapping")
        return {}
    out: dict[str, dict[str, Any]] = {}
    for cap, value in given.items():
        if cap not in defs:
            message = f"unknown capability '{cap}' of node '{node.name}' ({node.type})"
            ctx.problems.add(given.key_pos(cap), message, suggest(str(cap), defs))
            continue
        cap_type = capability_type(defs[cap])
        props = value.get("properties") if isinstance(value, dict) else None
        if value is not None and not isinstance(value, dict):
            ctx.problems.add(given.value_pos(cap), f"capability '{cap}' must be a mapping")
        prop_defs = ctx.registry.capability_properties(cap_type)
        what = f"capability '{cap}' ({cap_type}) of node '{node.name}'"
        out[str(cap)] = resolve_values(ctx, resolver, node, props, prop_defs, what, False, str(cap))
    for cap, cap_def in defs.items() if with_defaults else ():
        if cap not in out:
            prop_defs = ctx.registry.capability_properties(capability_type(cap_def))
            out[cap] = resolve_values(ctx, resolver, node, {}, prop_defs, cap, False)
    return out
