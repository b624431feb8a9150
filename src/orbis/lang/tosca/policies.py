"""Groups and policies. Placement (cloud_id, availability_zone) is the only policy IM acts on;
every other policy is kept in Template.policies with a warning (IM ignores them)."""

from __future__ import annotations

from typing import Any

from orbis.lang.errors import suggest
from orbis.lang.tosca.context import Context
from orbis.lang.tosca.functions import Resolver
from orbis.lang.yaml_positions import PMap, child_pos, plain
from orbis.model.infrastructure import Function, Policy, Position, Template

PLACEMENT = ("tosca.policies.Placement", "tosca.policies.indigo.Placement")


def read_groups(ctx: Context, section: Any, template: Template) -> None:
    if section is None:
        return
    if not isinstance(section, PMap):
        ctx.problems.add(None, "'groups' must be a mapping")
        return
    for name, spec in section.items():
        pos = section.key_pos(name)
        if not isinstance(spec, dict):
            ctx.problems.add(pos, f"group '{name}' must be a mapping (type, members)")
            continue
        group_type = spec.get("type", "tosca.groups.Root")
        if ctx.registry.resolve("group_types", group_type) is None:
            hint = suggest(str(group_type), ctx.registry.names("group_types"))
            ctx.problems.add(
                child_pos(spec, "type", pos), f"unknown group type '{group_type}'", hint
            )
        members = spec.get("members") or []
        if not isinstance(members, list):
            ctx.problems.add(child_pos(spec, "members", pos), f"group '{name}': members is a list")
            continue
        for i, member in enumerate(members):
            if member not in ctx.nodes:
                ctx.problems.add(
                    child_pos(members, i, pos),
                    f"group '{name}' names unknown node '{member}'",
                    suggest(str(member), ctx.nodes),
                )
        template.groups[str(name)] = [str(m) for m in members if m in ctx.nodes]


def _entries(ctx: Context, section: Any) -> list[tuple[str, Any, Position | None]]:
    """Policies as a TOSCA list of one-key maps, or (also seen) a plain map."""
    if isinstance(section, list):
        out = []
        for i, item in enumerate(section):
            if not isinstance(item, dict) or len(item) != 1:
                ctx.problems.add(child_pos(section, i), "a policy must be a one-key mapping")
                continue
            name, spec = next(iter(item.items()))
            out.append((str(name), spec, item.key_pos(name) if isinstance(item, PMap) else None))
        return out
    if isinstance(section, PMap):
        return [(str(k), v, section.key_pos(k)) for k, v in section.items()]
    ctx.problems.add(None, "'policies' must be a list")
    return []


def read_policies(ctx: Context, resolver: Resolver, section: Any, template: Template) -> None:
    if section is None:
        return
    placed: set[str] = set()  # first matching placement wins (IM)
    for name, spec, pos in _entries(ctx, section):
        if not isinstance(spec, dict):
            ctx.problems.add(pos, f"policy '{name}' must be a mapping (type, targets, properties)")
            continue
        policy_type = ctx.registry.resolve("policy_types", spec.get("type"))
        if policy_type is None:
            hint = suggest(str(spec.get("type")), ctx.registry.names("policy_types"))
            ctx.problems.add(
                child_pos(spec, "type", pos), f"unknown policy type '{spec.get('type')}'", hint
            )
            continue
        targets = _targets(ctx, spec, pos, template)
        raw_props = spec.get("properties")
        props = resolver.resolve(plain(raw_props), child_pos(spec, "properties", pos), None) or {}
        if policy_type not in PLACEMENT:
            ctx.problems.warn(pos, f"policy '{name}' ({policy_type}) is ignored by IM; kept as is")
            template.policies.append(Policy(name, policy_type, targets, props, pos))
            continue
        _placement(ctx, name, props, raw_props, pos, targets, placed, template)


def _targets(ctx: Context, spec: Any, pos: Position | None, template: Template) -> list[str]:
    targets = spec.get("targets") or []
    if not isinstance(targets, list):
        ctx.problems.add(child_pos(spec, "targets", pos), "policy targets must be a list")
        return []
    out: list[str] = []
    for i, target in enumerate(targets):
        if target in template.groups:
            out.extend(template.groups[target])
        elif target in ctx.nodes:
            out.append(str(target))
        else:
            hint = suggest(str(target), [*ctx.nodes, *template.groups])
            ctx.problems.add(
                child_pos(targets, i, pos),
                f"policy target '{target}' is neither a node nor a group",
                hint,
            )
    return list(dict.fromkeys(out))


def _placement(
    ctx: Context,
    name: str,
    props: dict[str, Any],
    raw: Any,
    pos: Position | None,
    targets: list[str],
    placed: set[str],
    template: Template,
) -> None:
    cloud, zone = props.get("cloud_id"), props.get("availability_zone")
    for key, value in (("cloud_id", cloud), ("availability_zone", zone)):
        if value is not None and (not isinstance(value, str) or isinstance(value, Function)):
            ctx.problems.add(
                child_pos(raw, key, pos),
                f"policy '{name}': {key} must be a string, got {value!r}",
                "the id of a cloud in your auth data",
            )
            return
    for target in targets:
        if target in placed:
            continue
        node = (
            template.computes.get(target)
            or template.containers.get(target)
            or template.functions.get(target)
        )
        if node is None:
            ctx.problems.warn(
                pos,
                f"policy '{name}': placement of '{target}' has no effect "
                "(only Compute, container and function nodes are placed)",
            )
            continue
        placed.add(target)
        if cloud is not None:
            node.cloud_id = cloud
        if zone is not None and hasattr(node, "availability_zone"):
            node.availability_zone = zone
