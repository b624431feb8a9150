"""TOSCA sections IM reads only in part: `node_filter` (applied to Compute sizing and image
selection, as IM does), and `substitution_mappings`, `workflows` and requirement or capability
`occurrences` (ignored by IM: a warning names each, so nothing is dropped silently)."""

from __future__ import annotations

from typing import Any

from orbis.lang.tosca.context import Context, NodeTemplate
from orbis.lang.yaml_positions import PMap

IGNORED_TOPOLOGY = ("substitution_mappings", "workflows")
# how a node_filter constraint becomes the value asked for: the lowest the filter accepts
_PICK = {
    "equal": lambda a: a,
    "greater_or_equal": lambda a: a,
    "greater_than": lambda a: a,
    "in_range": lambda a: a[0] if isinstance(a, list) and a else None,
    "valid_values": lambda a: a[0] if isinstance(a, list) and a else None,
}


def warn_ignored(ctx: Context, topology: PMap) -> None:
    """A warning for each section IM does not act on."""
    for key in IGNORED_TOPOLOGY:
        if key in topology:
            ctx.problems.warn(topology.key_pos(key), f"topology_template.{key} is ignored "
                              "(IM does not act on it; neither does Orbis)")  # fmt: skip
    for node in ctx.nodes.values():
        for entry in _list(node.raw.get("requirements")):
            for name, body in entry.items() if isinstance(entry, dict) else ():
                if isinstance(body, PMap) and "occurrences" in body:
                    what = f"node '{node.name}': occurrences of requirement '{name}' are ignored"
                    ctx.problems.warn(body.key_pos("occurrences"), what)
        for name, body in node.section("capabilities").items():
            if isinstance(body, PMap) and "occurrences" in body:
                what = f"node '{node.name}': occurrences of capability '{name}' are ignored"
                ctx.problems.warn(body.key_pos("occurrences"), what)


def filtered_capabilities(ctx: Context, compute: NodeTemplate) -> dict[str, dict[str, Any]]:
    """{capability: {property: value}} that node filters ask of this Compute: its own
    `node_filter`, and those of `host` requirements naming it (IM turns both into the VM's
    requirements: cpus, memory, image, os)."""
    filters = [compute.raw.get("node_filter")]
    for node in ctx.nodes.values():
        for entry in _list(node.raw.get("requirements")):
            body = entry.get("host") if isinstance(entry, dict) else None
            if isinstance(body, dict) and body.get("node") == compute.name:
                filters.append(body.get("node_filter"))
    wanted: dict[str, dict[str, Any]] = {}
    for node_filter in filters:
        if not isinstance(node_filter, dict):
            continue
        for cap_entry in _list(node_filter.get("capabilities")):
            for cap, body in cap_entry.items() if isinstance(cap_entry, dict) else ():
                props = body.get("properties") if isinstance(body, dict) else None
                for prop, constraint in _pairs(props):
                    value = _value(constraint)
                    if value is not None:
                        wanted.setdefault(str(cap), {})[str(prop)] = value
    return wanted


def apply_node_filters(
    ctx: Context, compute: NodeTemplate, caps: dict[str, dict[str, Any]]
) -> None:
    """Fill `caps` with what node filters ask, where the template itself set nothing."""
    given = compute.section("capabilities")
    for cap, props in filtered_capabilities(ctx, compute).items():
        written = given.get(cap, {}).get("properties") if isinstance(given.get(cap), dict) else None
        for prop, value in props.items():
            if not (isinstance(written, dict) and prop in written):
                caps.setdefault(cap, {})[prop] = value


def _value(constraint: Any) -> Any:
    """The value a property constraint of a filter asks for (None: it says only a maximum)."""
    if isinstance(constraint, list):  # a list of constraint clauses: the first that picks
        picks = [_value(c) for c in constraint]
        return next((p for p in picks if p is not None), None)
    if isinstance(constraint, dict) and len(constraint) == 1:
        op, arg = next(iter(constraint.items()))
        pick = _PICK.get(str(op))
        return pick(arg) if pick else None
    return constraint


def _pairs(props: Any) -> list[tuple[Any, Any]]:
    """(property, constraint) pairs: node filters write a map or a list of one-key maps."""
    if isinstance(props, dict):
        return list(props.items())
    return [next(iter(e.items())) for e in _list(props) if isinstance(e, dict) and len(e) == 1]


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []  # PList is a list too
