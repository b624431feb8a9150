"""Node and infrastructure states, with IM's names and IM's aggregation rule."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any


class NodeState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    CONFIGURED = "configured"
    UNCONFIGURED = "unconfigured"
    STOPPED = "stopped"
    OFF = "off"
    FAILED = "failed"
    UNKNOWN = "unknown"
    DELETING = "deleting"


def aggregate_state(
    node_states: Iterable[NodeState], *, deleting: bool = False, configuring: bool = False
) -> NodeState:
    """The infrastructure's state from its nodes', in order (IM's rule, reference §4.1).

    `configuring` is true while contextualization is still to run, so an infrastructure whose
    nodes are all up but not yet configured reads `running`.
    """
    if deleting:
        return NodeState.DELETING
    seen_pending = seen_running = False
    settled: NodeState | None = None
    any_state = False
    for state in node_states:
        any_state = True
        if state in (NodeState.FAILED, NodeState.UNKNOWN):
            return state
        if state == NodeState.PENDING:
            seen_pending = True
        elif state == NodeState.RUNNING:
            seen_running = True
        elif settled is None or (
            settled == NodeState.CONFIGURED and state == NodeState.UNCONFIGURED
        ):
            settled = state
    if seen_pending:
        return NodeState.PENDING
    if seen_running:
        return NodeState.RUNNING
    if settled is not None:
        return settled
    return NodeState.PENDING if (configuring or not any_state) else NodeState.UNKNOWN


# The views of an infrastructure (the API's detail document) that the CLI, the dashboard and
# the event stream all read the same way: one rule for "nothing more will happen".
SETTLED_STATES = frozenset({"configured", "unconfigured", "failed", "off", "stopped"})
BUSY_PHASES = frozenset({"creating", "launching", "configuring", "deleting"})


def settled(detail: Mapping[str, Any]) -> bool:
    """Nothing more will happen to the infrastructure without a new request.

    The phase alone is not enough: right after a request (a reconfigure, a removal) the phase
    still reads `done` from the previous run until the engine picks the work up, so the
    generation asked for must have been reconciled too.
    """
    if detail["phase"] in BUSY_PHASES:
        return False
    reconciled = detail.get("reconciled") or 0
    generation = detail.get("generation")  # absent from an older server's view
    if generation is not None and reconciled < generation:
        return False  # a change was asked for and the engine has not brought it about yet
    return detail["state"] in SETTLED_STATES or not detail["nodes"] or generation is not None
