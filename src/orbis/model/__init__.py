"""The one internal model every template language parses into."""

from orbis.model.infrastructure import (
    Component,
    Compute,
    Function,
    Operation,
    Output,
    PortSpec,
    Template,
)
from orbis.model.states import NodeState, aggregate_state

__all__ = [
    "Compute",
    "Component",
    "Function",
    "NodeState",
    "Operation",
    "Output",
    "PortSpec",
    "Template",
    "aggregate_state",
]
