"""Intrinsic functions at load time.

get_input and get_property are evaluated now (their values are known); get_attribute, concat,
token, join, get_artifact, get_operation_output become `model.Function` values for the engine,
after checking their arguments. SELF/HOST in get_attribute are replaced by node names.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from orbis.lang.errors import suggest
from orbis.lang.tosca.context import Context
from orbis.lang.yaml_positions import child_pos, plain
from orbis.model.infrastructure import Function, Position

LOADTIME = {"get_input", "get_property"}
DEFERRED = {"get_attribute", "concat", "token", "join", "get_artifact", "get_operation_output"}
FUNCTIONS = LOADTIME | DEFERRED
_ENTITIES = ("SELF", "HOST", "SOURCE", "TARGET")
_DATA_LIKE = {"token", "concat", "join"}
# attributes IM gives values for whatever the node's type declares (tosca-dialect §3)
IM_ATTRIBUTES = {
    "tosca_id", "tosca_name", "state", "public_address", "private_address", "ip_address",
    "endpoint", "endpoints", "credential", "ctxt_log", "ansible_output", "tls_certificates",
}  # fmt: skip
# attributes of Orbis's own, on every node (docs/overlay.md: the address over the overlay)
ORBIS_ATTRIBUTES = {"overlay_address"}


@dataclass
class Relation:
    """The relationship whose operation inputs are being resolved: SELF is the relationship,
    SOURCE and TARGET its two ends."""

    source: str
    target: str
    properties: dict[str, Any] = field(default_factory=dict)


class Resolver:
    """Resolves the functions of values written in the template (or inherited from types)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._stack: list[tuple[str, str, str]] = []  # get_property chain, to catch cycles
        self.relation: Relation | None = None
        self.in_operation_inputs = False  # get_artifact is only meaningful there (as in IM)

    def resolve(self, value: Any, pos: Position | None, self_node: str | None) -> Any:
        """Plain value with load-time functions evaluated and the others as `Function`s."""
        if isinstance(value, dict):
            if len(value) == 1:
                name, args = next(iter(value.items()))
                # {token: x} / {join: x} with no argument list is data (e.g. a credential)
                if name in FUNCTIONS and (isinstance(args, list) or name not in _DATA_LIKE):
                    return self._call(name, args, child_pos(value, name, pos), pos, self_node)
                if isinstance(name, str) and (name.startswith("get_") or _misspelt(name, args)):
                    hint = suggest(name, FUNCTIONS)
                    self.ctx.problems.add(pos, f"unknown function '{name}'", hint)
                    return None
            return {
                k: self.resolve(v, child_pos(value, k, pos), self_node) for k, v in value.items()
            }
        if isinstance(value, list):
            return [
                self.resolve(v, child_pos(value, i, pos), self_node) for i, v in enumerate(value)
            ]
        return value

    def _args(self, name: str, args: Any, pos: Position | None, minimum: int, usage: str) -> bool:
        if isinstance(args, list) and len(args) >= minimum:
            return True
        got = f"{len(args)} argument(s)" if isinstance(args, list) else repr(plain(args))
        self.ctx.problems.add(pos, f"{name} needs {usage}, got {got}")
        return False

    def _call(
        self, name: str, args: Any, args_pos: Position | None, pos: Position | None,
        self_node: str | None,
    ) -> Any:  # fmt: skip
        if name == "get_input":
            return self._get_input(args, pos)
        if name == "get_property":
            if not self._args(name, args, pos, 2, "a list [node, (capability,) property, ...]"):
                return None
            return self._get_property(args, pos, self_node)
        if name == "get_attribute":
            if not self._args(name, args, pos, 2, "a list [node, attribute, ...]"):
                return None
            node = self._entity(args[0], child_pos(args, 0, pos), self_node, allow_host=True)
            rest = self.resolve(args[1:], args_pos, self_node)
            if node and len(rest) >= 2 and isinstance(rest[0], str):
                # [X, <requirement>, attr, ...]: IM follows the requirement to its target
                target = {r.name: r.target for r in self.ctx.nodes[node].requirements}.get(rest[0])
                if target is not None:
                    node, rest = target, rest[1:]
            attribute = rest[0] if rest and isinstance(rest[0], str) else None
            if node and attribute and not self._has_attribute(node, attribute, pos):
                return None
            return Function(name, (node, *rest), pos) if node else None
        usage = {
            "concat": (1, "a list of values to join"),
            "token": (3, "a list [string, separator, index]"),
            "join": (1, "a list [list of values, (separator)]"),
            "get_artifact": (2, "a list [entity, artifact name, ...]"),
            "get_operation_output": (4, "a list [entity, interface, operation, output]"),
        }[name]
        if not self._args(name, args, pos, *usage):
            return None
        if name == "token" and len(args) != 3:
            self.ctx.problems.add(pos, f"token needs exactly 3 arguments, got {len(args)}")
            return None
        items = self.resolve(args, args_pos, self_node)
        if name == "get_artifact":
            return self._get_artifact(items, pos, self_node)
        if name == "get_operation_output" and items[0] == "SELF" and self_node:
            items[0] = self_node
        if name == "concat" and all(_constant(i) for i in items):
            return "".join(str(i) for i in items)  # fold: nothing left to evaluate later
        if name == "join":
            # TOSCA 1.3 join [list, (separator)]: IM leaves it as a map; Orbis evaluates it
            if not isinstance(items[0], list) or len(items) > 2:
                self.ctx.problems.add(pos, "join needs [list of values, (separator)]")
                return None
            if all(_constant(i) for i in items[0]) and (len(items) == 1 or _constant(items[1])):
                return (str(items[1]) if len(items) > 1 else "").join(str(i) for i in items[0])
        return Function(name, tuple(items), pos)

    def _has_attribute(self, node: str, attribute: str, pos: Position | None = None) -> bool:
        """True if IM gives `attribute` a value, or the node's type (or one of its
        capabilities) declares it; otherwise report it (IM would give null, silently)."""
        entity = self.ctx.nodes.get(node)
        if entity is None or attribute in IM_ATTRIBUTES | ORBIS_ATTRIBUTES:
            return True
        registry = self.ctx.registry
        declared = set(registry.merged("node_types", entity.type, "attributes"))
        capabilities = set(registry.merged("node_types", entity.type, "capabilities"))
        if not registry.chain("node_types", entity.type) or attribute in declared | capabilities:
            return True  # an unknown type is reported where it is named
        known = sorted(IM_ATTRIBUTES | declared)
        self.ctx.problems.add(
            pos or entity.position,
            f"get_attribute: node '{node}' ({entity.type}) has no attribute '{attribute}'",
            suggest(attribute, known) or f"known here: {', '.join(known)}",
        )
        return False

    def _get_artifact(self, items: list[Any], pos: Position | None, self_node: str | None) -> Any:
        """[SELF|node, artifact name, ...] → Function(get_artifact, (node, name, file))."""
        if not self.in_operation_inputs:
            self.ctx.problems.add(pos, "get_artifact can only be used as an operation input")
            return None
        node = self._entity(items[0], pos, self_node, allow_host=False)
        if node is None:
            return None
        from orbis.lang.tosca.operations import artifact_location  # circular at import time

        file = artifact_location(self.ctx, self.ctx.nodes[node], str(items[1]), pos)
        return Function("get_artifact", (node, str(items[1]), file), pos) if file else None

    def _get_input(self, args: Any, pos: Position | None) -> Any:
        path = list(args) if isinstance(args, list) else [args]
        if not path or not isinstance(path[0], str):
            self.ctx.problems.add(pos, f"get_input needs an input name, got {plain(args)!r}")
            return None
        if path[0] not in self.ctx.input_positions:
            hint = suggest(path[0], self.ctx.input_positions)
            self.ctx.problems.add(pos, f"get_input of undefined input '{path[0]}'", hint)
            return None
        return _dig(plain(self.ctx.inputs.get(path[0])), path[1:])

    def _entity(
        self, entity: Any, pos: Position | None, self_node: str | None, allow_host: bool
    ) -> str | None:
        """Node name an entity argument (SELF, HOST or a node name) stands for."""
        if entity in ("SOURCE", "TARGET") and self.relation is not None:
            return self.relation.source if entity == "SOURCE" else self.relation.target
        if entity == "SELF" and self.relation is not None:
            return self.relation.source  # get_attribute on a relationship: its source node
        if entity == "SELF" or (entity == "HOST" and allow_host):
            if self_node is None:
                self.ctx.problems.add(pos, f"{entity} can only be used inside a node template")
                return None
            if entity == "SELF":
                return self_node
            host = self.ctx.hosts.get(self_node)
            if host is None:
                self.ctx.problems.add(pos, f"HOST: node '{self_node}' is not hosted on a Compute")
            return host
        if entity in _ENTITIES:
            self.ctx.problems.add(pos, f"{entity} is only meaningful in a relationship operation")
            return None
        if not isinstance(entity, str) or entity not in self.ctx.nodes:
            hint = suggest(str(entity), self.ctx.nodes)
            self.ctx.problems.add(pos, f"unknown node '{entity}'", hint)
            return None
        return entity

    def _get_property(self, args: list[Any], pos: Position | None, self_node: str | None) -> Any:
        if args[0] == "SELF" and self.relation is not None:
            # inside a relationship's operation, SELF is the relationship (location, device...)
            props = self.relation.properties
            if str(args[1]) not in props:
                hint = suggest(str(args[1]), props)
                self.ctx.problems.add(
                    pos, f"get_property: the relationship has no '{args[1]}'", hint
                )
                return None
            return _dig(props[str(args[1])], list(args[2:]))
        node_name = self._entity(args[0], child_pos(args, 0, pos), self_node, allow_host=True)
        if node_name is None:
            return None
        reg = self.ctx.registry
        names = [str(a) for a in args[1:]]
        node = self.ctx.nodes[node_name]
        reqs = {r.name: r.target for r in node.requirements}
        cap, prop, nested = "", names[0], args[2:]
        if len(names) >= 2 and names[0] in reqs:
            # tosca-parser: [X, req, prop] reads the same-named capability of the target node
            node_name, cap, prop, nested = reqs[names[0]], names[0], names[1], args[3:]
            node = self.ctx.nodes[node_name]
        elif len(names) >= 2 and names[0] in reg.merged("node_types", node.type, "capabilities"):
            cap, prop, nested = names[0], names[1], args[3:]
        elif len(names) >= 2 and names[0] in reg.requirements(node.type):
            message = f"get_property: requirement '{names[0]}' of node '{node_name}' is not set"
            self.ctx.problems.add(pos, message)
            return None
        if cap:
            cap_def = reg.merged("node_types", node.type, "capabilities").get(cap)
            cap_type = cap_def if isinstance(cap_def, str) else (cap_def or {}).get("type", "")
            defs = reg.capability_properties(str(cap_type))
            given = node.section("capabilities").get(cap)
            values = given.get("properties") if isinstance(given, dict) else None
        else:
            defs = reg.merged("node_types", node.type, "properties")
            values = node.section("properties")
        values = values if isinstance(values, dict) else {}
        where = f"capability '{cap}' of node '{node_name}'" if cap else f"node '{node_name}'"
        if prop not in defs and prop not in values:
            hint = suggest(prop, list(defs))
            self.ctx.problems.add(pos, f"get_property: {where} has no property '{prop}'", hint)
            return None
        key = (node_name, cap, prop)
        if key in self._stack:
            chain = " -> ".join(f"{n}.{p}" for n, _, p in [*self._stack, key])
            self.ctx.problems.add(pos, f"get_property cycle: {chain}")
            return None
        self._stack.append(key)
        try:
            if prop in values:
                value = self.resolve(values[prop], child_pos(values, prop, pos), node_name)
            else:
                default = defs[prop].get("default") if isinstance(defs[prop], dict) else None
                value = self.resolve(default, pos, node_name)
        finally:
            self._stack.pop()
        return _dig(value, nested)


def _constant(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _dig(value: Any, path: list[Any]) -> Any:
    """Follow nested keys/indexes into a value; None when a step is missing."""
    for step in path:
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and isinstance(step, int) and -len(value) <= step < len(value):
            value = value[step]
        else:
            return None
    return value


def _misspelt(name: str, args: Any) -> bool:
    """A one-key map whose key is nearly a function name and whose value is a list of
    arguments (e.g. `concatt: [a, b]`) is a typo, not data."""
    return isinstance(args, list) and bool(difflib.get_close_matches(name, FUNCTIONS, 1, 0.85))
