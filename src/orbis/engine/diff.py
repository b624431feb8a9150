"""What to do to each node: the difference between desired and observed state. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from orbis.model.states import NodeState

UP = {NodeState.RUNNING, NodeState.CONFIGURED, NodeState.UNCONFIGURED}


class NodeView(Protocol):
    vm_id: int
    desired: str
    state: str
    provider_id: str | None
    reboot_pending: bool
    needs_config: bool
    deleted: bool


@dataclass(frozen=True)
class NodeAction:
    kind: str  # launch | start | stop | reboot | destroy
    vm_id: int


def node_actions(nodes: Iterable[NodeView]) -> list[NodeAction]:
    """The provider actions that bring every node to its desired state.

    A node whose launch failed stays failed (no endless relaunching); `retry` puts it back to
    pending. A node still pending is launched again after a crash: launching is idempotent.
    """
    actions = []
    for n in nodes:
        if n.deleted:
            continue
        state = NodeState(n.state)
        if n.desired == "absent":
            actions.append(NodeAction("destroy", n.vm_id))
        elif n.desired == "running":
            if state == NodeState.PENDING:
                actions.append(NodeAction("launch", n.vm_id))
            elif state in (NodeState.STOPPED, NodeState.OFF):
                actions.append(NodeAction("start", n.vm_id))
            elif n.reboot_pending and state in UP:
                actions.append(NodeAction("reboot", n.vm_id))
        elif n.desired == "stopped" and n.provider_id and state in UP | {NodeState.PENDING}:
            actions.append(NodeAction("stop", n.vm_id))
    return actions


def needs_configuration(nodes: Iterable[NodeView]) -> list[int]:
    """VM ids of running nodes whose configuration is still to run."""
    return [
        n.vm_id
        for n in nodes
        if not n.deleted and n.desired == "running" and n.needs_config and NodeState(n.state) in UP
    ]
