"""The configuration plan: which playbooks run on which node, in which order. Pure, no I/O.

Order follows IM's rule: a node's level is 1 without requirements, else one more than the
highest level among the targets of its HostedOn / DependsOn / ConnectsTo requirements; levels
run one after the other, steps of one level run together. Level 0 holds the built-in step that
formats and mounts data disks (configure/storage.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from orbis.configure import storage
from orbis.model.infrastructure import Compute, Operation, Template

ORDERING_RELATIONSHIPS = ("HostedOn", "DependsOn", "ConnectsTo")
# IM's order inside one node's configure, relationship operations included (stop/delete never run)
LIFECYCLE = (
    "create", "pre_configure_source", "pre_configure_target", "configure",
    "post_configure_source", "post_configure_target", "start", "add_target", "add_source",
    "target_changed", "remove_target",
)  # fmt: skip


@dataclass(frozen=True)
class PlannedStep:
    name: str  # IM's configure name: "<compute>_conf" or "<node>_<compute>_conf"
    node: str  # node template whose operations these are
    compute: str  # the Compute they run on
    level: int
    operations: tuple[Operation, ...]


def orders(relationship: str) -> bool:
    """Whether a requirement with this relationship type orders configuration."""
    return any(relationship.endswith(name) for name in ORDERING_RELATIONSHIPS)


def levels(template: Template) -> dict[str, int]:
    nodes: dict[str, Compute | object] = {**template.computes, **template.components}
    memo: dict[str, int] = {}

    def level(name: str, seen: frozenset[str]) -> int:
        if name in memo:
            return memo[name]
        node = template.node(name)
        if node is None or name in seen:  # unknown or cyclic: the loader reports these
            return 0
        explicit = getattr(node, "step", None)
        if explicit is not None:  # RADL gives the step itself
            memo[name] = explicit
            return explicit
        targets = [t for rel, t in node.requirements if orders(rel) and t in nodes]
        value = 1 + max((level(t, seen | {name}) for t in targets), default=0)
        memo[name] = value
        return value

    return {name: level(name, frozenset()) for name in nodes}


def plan_configuration(template: Template) -> list[PlannedStep]:
    """Every step that has something to run, by level then by name."""
    node_levels = levels(template)
    steps: list[PlannedStep] = []
    for compute in template.computes.values():
        disks = storage.mountable(compute)
        if disks:  # level 0: disks are ready before any recipe of the node runs
            text = storage.playbook(disks)
            steps.append(PlannedStep(f"{compute.name}_disks", compute.name, compute.name, 0,
                                     (Operation("create", inline=text),)))  # fmt: skip
        ops = _ordered(compute.operations)
        if ops:
            steps.append(
                PlannedStep(
                    f"{compute.name}_conf",
                    compute.name,
                    compute.name,
                    node_levels[compute.name],
                    ops,
                )
            )
    for component in template.components.values():
        ops = _ordered(component.operations)
        if ops and component.host in template.computes:
            steps.append(
                PlannedStep(
                    f"{component.name}_{component.host}_conf",
                    component.name,
                    component.host,
                    node_levels[component.name],
                    ops,
                )
            )
    return sorted(steps, key=lambda s: (s.level, s.name))


def _ordered(operations: list[Operation]) -> tuple[Operation, ...]:
    # stable: several relationships may each bring e.g. a pre_configure_source
    rank = {name: i for i, name in enumerate(LIFECYCLE)}
    return tuple(sorted((op for op in operations if op.name in rank), key=lambda o: rank[o.name]))


def group_by_level(steps: list[PlannedStep]) -> list[list[PlannedStep]]:
    grouped: dict[int, list[PlannedStep]] = {}
    for step in steps:
        grouped.setdefault(step.level, []).append(step)
    return [grouped[k] for k in sorted(grouped)]
