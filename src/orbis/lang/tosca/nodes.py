"""Node templates: types, kinds, requirements and the Compute each node ends up on."""

from __future__ import annotations

from typing import Any

from orbis.lang.errors import suggest
from orbis.lang.tosca.context import (
    ANSIBLE_HOST,
    COMPONENT,
    COMPUTE,
    CONTAINER,
    FUNCTION,
    NETWORK,
    PORT,
    RUNTIME,
    STORAGE,
    UNSUPPORTED,
    Context,
    NodeTemplate,
    Requirement,
)
from orbis.lang.yaml_positions import PMap, child_pos

NODE_FIELDS = (
    "type", "description", "metadata", "directives", "properties", "attributes", "requirements",
    "capabilities", "interfaces", "artifacts", "node_filter", "copy",
)  # fmt: skip
HOSTED_ON = "tosca.relationships.HostedOn"
BINDS_TO = "tosca.relationships.network.BindsTo"
DEPENDS_ON = "tosca.relationships.DependsOn"
# IM dispatches on a node's root type; the first match in the type chain decides the kind.
KINDS: tuple[tuple[str, str], ...] = (
    ("tosca.nodes.Compute", COMPUTE),
    ("tosca.nodes.network.Network", NETWORK),
    ("tosca.nodes.network.Port", PORT),
    ("tosca.nodes.BlockStorage", STORAGE),
    ("tosca.nodes.Container.Application", CONTAINER),
    ("tosca.nodes.Container.Runtime", RUNTIME),  # normative: a SoftwareComponent; grycap: Root
    ("tosca.nodes.indigo.Container.Runtime.Docker", RUNTIME),
    ("tosca.nodes.aisprint.FaaS.Function", FUNCTION),
    ("tosca.nodes.im.AnsibleHost", ANSIBLE_HOST),
    ("tosca.nodes.network.FloatingIP", UNSUPPORTED),
)


def kind_of(chain: list[str]) -> str:
    for base, kind in KINDS:
        if base in chain:
            return kind
    return COMPONENT


def read_nodes(ctx: Context, section: Any) -> None:
    """Fill ctx.nodes, their requirements and ctx.hosts; problems go to ctx.problems."""
    if not isinstance(section, PMap):
        ctx.problems.add(child_pos(section, 0, ctx.pos()), "'node_templates' must be a mapping")
        return
    for name, raw in section.items():
        node = _read_node(ctx, str(name), raw, section)
        if node:
            ctx.nodes[node.name] = node
    for node in ctx.nodes.values():
        node.requirements = _read_requirements(ctx, node)
    for name, node in ctx.nodes.items():
        if _host_of(ctx, name, []) is None and node.kind == COMPONENT:
            ctx.problems.warn(node.position, f"node '{name}' is not hosted on any Compute: skipped")


def _read_node(ctx: Context, name: str, raw: Any, section: PMap) -> NodeTemplate | None:
    pos = section.key_pos(name)
    if not isinstance(raw, PMap):
        ctx.problems.add(section.value_pos(name), f"node template '{name}' must be a mapping")
        return None
    for key in raw:
        if key not in NODE_FIELDS:
            hint = suggest(str(key), NODE_FIELDS)
            ctx.problems.add(raw.key_pos(key), f"unknown field '{key}' in node '{name}'", hint)
    if "type" not in raw:
        ctx.problems.add(pos, f"node template '{name}' has no type")
        return None
    type_name = ctx.registry.resolve("node_types", raw["type"])
    if type_name is None:
        hint = suggest(str(raw["type"]), ctx.registry.names("node_types"))
        ctx.problems.add(raw.value_pos("type"), f"unknown node type '{raw['type']}'", hint)
        return None
    node = NodeTemplate(name, type_name, pos, raw)
    node.kind = kind_of(ctx.registry.chain("node_types", type_name))
    if node.kind == UNSUPPORTED:
        ctx.problems.warn(pos, f"node '{name}' ({type_name}): IM ignores this node type")
    return node


def _relationship(ctx: Context, value: Any, pos: Any) -> str | None:
    """Full relationship type of a requirement's `relationship` (type, short name or template)."""
    if isinstance(value, dict):
        value = value.get("type")
    if isinstance(value, str) and value in ctx.relationship_templates:
        value = ctx.relationship_templates[value].get("type")
    rel = ctx.registry.resolve("relationship_types", value)
    if rel is None:
        hint = suggest(str(value), ctx.registry.names("relationship_types"))
        ctx.problems.add(pos, f"unknown relationship type '{value}'", hint)
    return rel


def _read_requirements(ctx: Context, node: NodeTemplate) -> list[Requirement]:
    raw = node.raw.get("requirements")
    if raw is None:
        return []
    if not isinstance(raw, list):
        ctx.problems.add(node.raw.value_pos("requirements"), "'requirements' must be a list")
        return []
    definitions = ctx.registry.requirements(node.type)
    out: list[Requirement] = []
    for i, item in enumerate(raw):
        pos = child_pos(raw, i)
        if not isinstance(item, dict) or len(item) != 1:
            ctx.problems.add(pos, "a requirement must be a one-key mapping like '- host: node'")
            continue
        req_name, spec = next(iter(item.items()))
        target, rel_value, properties = spec, None, None
        if isinstance(spec, dict):
            target, rel_value = spec.get("node"), spec.get("relationship")
            if isinstance(rel_value, dict):
                properties = rel_value.get("properties")
        target_pos = child_pos(spec, "node", child_pos(item, req_name, pos))
        if target is None and isinstance(spec, dict) and "node_filter" in spec:
            # a requirement that only describes the node it wants: IM matches no node by
            # filter, so it is left out (a Compute's own node_filter is applied: filters.py)
            ctx.problems.warn(
                pos,
                f"requirement '{req_name}' of node '{node.name}' names no node, only a "
                "node_filter: ignored (IM does not select nodes by filter)",
            )
            continue
        if not isinstance(target, str):
            ctx.problems.add(
                target_pos, f"requirement '{req_name}' of node '{node.name}' names no node"
            )
            continue
        if target not in ctx.nodes:
            hint = suggest(target, ctx.nodes)
            message = (
                f"requirement '{req_name}' of node '{node.name}' names unknown node '{target}'"
            )
            ctx.problems.add(target_pos, message, hint)
            continue
        if rel_value is not None:
            rel_pos = child_pos(spec, "relationship", pos)
            if isinstance(rel_value, dict):
                rel_pos = child_pos(rel_value, "type", rel_pos)
            rel = _relationship(ctx, rel_value, rel_pos)
            if isinstance(rel_value, str) and rel_value in ctx.relationship_templates:
                template = ctx.relationship_templates[rel_value]
                properties = template.get("properties") if isinstance(template, dict) else None
        elif req_name in definitions:
            declared = definitions[req_name].get("relationship") or DEPENDS_ON
            rel = _relationship(ctx, declared, pos)
        else:
            hint = suggest(str(req_name), definitions)
            message = f"requirement '{req_name}' is not declared by {node.type}; taken as DependsOn"
            ctx.problems.warn(pos, message + (f" ({hint})" if hint else ""))
            rel = DEPENDS_ON
        if rel:
            raw_rel = rel_value if isinstance(rel_value, dict) else None
            if isinstance(rel_value, str) and rel_value in ctx.relationship_templates:
                raw_rel = ctx.relationship_templates[rel_value]
            out.append(Requirement(str(req_name), target, rel, pos, properties, raw_rel))
    return out


def _host_of(ctx: Context, name: str, path: list[str]) -> str | None:
    """The Compute a node ends up on, following HostedOn/BindsTo requirements transitively."""
    if name in ctx.hosts:
        return ctx.hosts[name]
    node = ctx.nodes[name]
    if node.kind == COMPUTE:
        ctx.hosts[name] = name
        return name
    host: str | None = None
    for req in node.requirements:
        if not (ctx.is_relationship(req.relationship, HOSTED_ON)
                or ctx.is_relationship(req.relationship, BINDS_TO)):  # fmt: skip
            continue
        if req.target in path or req.target == name:
            cycle = [*path, name, req.target]
            chain = " -> ".join(cycle[cycle.index(req.target) :])
            ctx.problems.add(req.position, f"HostedOn cycle: {chain}")
            break
        host = _host_of(ctx, req.target, [*path, name])
        break
    ctx.hosts[name] = host
    return host
