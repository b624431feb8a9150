"""State shared by the steps of loading one TOSCA template."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orbis.lang.errors import Problems
from orbis.lang.sources import SERVER, Sources
from orbis.lang.tosca.registry import Registry
from orbis.lang.yaml_positions import PMap
from orbis.model.infrastructure import Position

COMPUTE = "compute"
COMPONENT = "component"
NETWORK = "network"
PORT = "port"
STORAGE = "storage"
CONTAINER = "container"  # a Kubernetes application (tosca.nodes.Container.Application)
RUNTIME = "runtime"  # the container runtime an application is hosted on
FUNCTION = "function"  # FaaS (OSCAR / Lambda)
ANSIBLE_HOST = "ansible_host"
UNSUPPORTED = "unsupported"  # parsed, but with no meaning for IM (e.g. FloatingIP)


@dataclass
class Requirement:
    name: str
    target: str
    relationship: str  # full relationship type name
    position: Position | None
    properties: Any = None  # relationship template properties (raw)
    template: Any = None  # the relationship as written (inline mapping or relationship_template)


@dataclass
class NodeTemplate:
    """One node template with its type resolved; raw sections keep their positions."""

    name: str
    type: str
    position: Position | None
    raw: PMap
    kind: str = COMPONENT
    requirements: list[Requirement] = field(default_factory=list)

    def section(self, key: str) -> dict[str, Any]:
        value = self.raw.get(key)
        return value if isinstance(value, dict) else {}


@dataclass
class Context:
    file: str
    base_dir: Path
    problems: Problems
    registry: Registry
    repositories: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)  # final values
    input_positions: dict[str, Position] = field(default_factory=dict)
    nodes: dict[str, NodeTemplate] = field(default_factory=dict)
    relationship_templates: dict[str, Any] = field(default_factory=dict)
    hosts: dict[str, str | None] = field(default_factory=dict)  # node -> its Compute
    # node -> the (source node, requirement) pairs that target it; built once, on first use
    incoming: dict[str, list[tuple[NodeTemplate, Requirement]]] | None = None
    sources: Sources = SERVER  # whether files of this machine may be read (CLI) or not

    def pos(self, line: int = 1, col: int = 1) -> Position:
        return Position(self.file, line, col)

    def is_relationship(self, rel_type: str, base: str) -> bool:
        return self.registry.derives("relationship_types", rel_type, base)
