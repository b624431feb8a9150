"""Relationship operations (interface Configure) and IM's order of a node's operations.

A node runs, in its own configure, the operations of the relationships it is the source of
(`pre/post_configure_source`, `add_source`) and of those it is the target of
(`pre/post_configure_target`, `add_target`, `target_changed`, `remove_target`). Each comes from
the relationship template, else the other end's node type, else the relationship type.
"""

from __future__ import annotations

from typing import Any

from orbis.lang.tosca.context import Context, NodeTemplate, Requirement
from orbis.lang.tosca.functions import Relation, Resolver
from orbis.lang.tosca.operations import implementation, operation_inputs
from orbis.lang.yaml_positions import child_pos
from orbis.model.infrastructure import Operation, Position

SOURCE_OPS = ("pre_configure_source", "post_configure_source", "add_source")
TARGET_OPS = (
    "pre_configure_target",
    "post_configure_target",
    "add_target",
    "target_changed",
    "remove_target",
)
# IM's execution order inside one node's configure (stop/delete never run)
ORDER = (
    "create",
    "pre_configure_source",
    "pre_configure_target",
    "configure",
    "post_configure_source",
    "post_configure_target",
    "start",
    "add_target",
    "add_source",
    "target_changed",
    "remove_target",
)
CONFIGURE = ("Configure", "tosca.interfaces.relationship.Configure")


def _configure(interfaces: Any, any_interface: bool = False) -> dict[str, Any]:
    """The Configure operations of an interfaces map. With `any_interface` (a relationship
    template's own interfaces) operations of the other interfaces count too, Configure's
    winning: IM matches a relationship template's operations by name whatever interface
    holds them (the catalogue's GlusterFS add-on writes pre_configure_source in Standard)."""
    if not isinstance(interfaces, dict):
        return {}
    out: dict[str, Any] = {}
    if any_interface:
        for name, ops in interfaces.items():
            if name not in CONFIGURE and isinstance(ops, dict):
                out.update({k: v for k, v in ops.items() if k in (*SOURCE_OPS, *TARGET_OPS)})
    for name in reversed(CONFIGURE):  # the short name wins over the full one
        if isinstance(interfaces.get(name), dict):
            out.update(interfaces[name])
    return out


def _relationship_properties(
    ctx: Context, resolver: Resolver, req: Requirement, self_node: str
) -> dict[str, Any]:
    defs = ctx.registry.merged("relationship_types", req.relationship, "properties")
    out: dict[str, Any] = {}
    for name, definition in defs.items():
        if isinstance(definition, dict) and "default" in definition:
            out[name] = definition["default"]
    given = req.properties if isinstance(req.properties, dict) else {}
    for name, value in given.items():
        out[str(name)] = resolver.resolve(value, child_pos(given, name, req.position), self_node)
    return out


def _candidates(
    ctx: Context, req: Requirement, other: NodeTemplate
) -> list[tuple[dict[str, Any], Position | None]]:
    """Configure interfaces, best first: the relationship template, the other end's node
    type, the relationship type."""
    template = req.template if isinstance(req.template, dict) else {}
    own = _configure(template.get("interfaces"), any_interface=True)
    found = [(own, req.position)]
    found.append((_configure(ctx.registry.merged("node_types", other.type, "interfaces")), None))
    found.append(
        (
            _configure(ctx.registry.merged("relationship_types", req.relationship, "interfaces")),
            None,
        )
    )
    return found


def relationship_operations(
    ctx: Context, resolver: Resolver, node: NodeTemplate
) -> list[Operation]:
    """The relationship operations `node` runs, as source and as target."""
    ends: list[tuple[NodeTemplate, Requirement, NodeTemplate, tuple[str, ...]]] = [
        (node, req, ctx.nodes[req.target], SOURCE_OPS) for req in node.requirements
    ]
    if ctx.incoming is None:  # an index, so big templates stay linear
        ctx.incoming = {}
        for other in ctx.nodes.values():
            for req in other.requirements:
                ctx.incoming.setdefault(req.target, []).append((other, req))
    for other, req in ctx.incoming.get(node.name, []):
        ends.append((other, req, other, TARGET_OPS))
    out: list[Operation] = []
    for source, req, other, wanted in ends:
        for op_name in wanted:
            chosen = next(
                (
                    (iface[op_name], where)
                    for iface, where in _candidates(ctx, req, other)
                    if iface.get(op_name) is not None
                ),
                None,
            )
            if chosen is None:
                continue
            definition, where = chosen
            inherited = where is None
            pos = where or req.position
            impl, inputs = (
                (definition.get("implementation"), definition.get("inputs"))
                if isinstance(definition, dict)
                else (definition, None)
            )
            previous = resolver.relation
            resolver.relation = Relation(
                source.name if wanted is SOURCE_OPS else other.name,
                req.target,
                _relationship_properties(ctx, resolver, req, node.name),
            )
            try:
                values = operation_inputs(
                    resolver, node.name, pos, [inputs], own_from=1 if inherited else 0
                )
            finally:
                resolver.relation = previous
            path, inline = implementation(ctx, node, impl, pos)
            if path is None and inline is None:
                ctx.problems.add(
                    pos,
                    f"operation '{op_name}' of a relationship of node "
                    f"'{node.name}' has no implementation",
                )
                continue
            out.append(Operation(op_name, path, inline, values, inherited, pos))
    return out


def in_order(operations: list[Operation]) -> list[Operation]:
    """Operations sorted by IM's execution order (stable: several relationships keep theirs)."""
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(operations, key=lambda op: rank.get(op.name, len(ORDER)))
