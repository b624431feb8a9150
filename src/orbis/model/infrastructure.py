"""Data classes of a parsed infrastructure template (language independent).

A `Template` is the desired shape of an infrastructure: compute nodes (each deployed `count`
times), software components hosted on them, and outputs. Values that can only be known once
nodes exist (addresses, ids) stay as unevaluated `Function` values until then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Position:
    """Where something was written: file, 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Function:
    """An intrinsic function call left for later evaluation (get_attribute, concat, ...)."""

    name: str
    args: tuple[Any, ...]
    position: Position | None = None


@dataclass(frozen=True)
class PortSpec:
    """A port opened on a node's endpoint."""

    port: int
    protocol: str = "tcp"
    target: int | None = None  # internal port, when it differs from the exposed one
    remote_cidr: str | None = None
    range_end: int | None = None  # a port range port..range_end (TOSCA PortSpec source_range)


@dataclass(frozen=True)
class Artifact:
    """A file a node needs: a playbook, a script, an Ansible Galaxy role (`file` = role spec)...

    `file` is an absolute path, a URL, or (Galaxy roles/collections, images) the name as written.
    """

    name: str
    type: str
    file: str


@dataclass
class Operation:
    """One lifecycle operation (create / configure / start) of a node.

    `implementation` is a path to an Ansible playbook (absolute, resolved against the template's
    folder) or a URL; `inline` holds the playbook text when the template embeds it.
    """

    name: str
    implementation: str | None = None
    inline: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    inherited: bool = False  # defined by the node type rather than by the template
    position: Position | None = None


@dataclass
class Compute:
    """A machine: a VM on a cloud, a container on the local back-end."""

    name: str
    type: str
    count: int = 1
    num_cpus: float | None = None
    mem_size: int | None = None  # bytes
    disk_size: int | None = None  # bytes
    image: str | None = None
    os_type: str | None = None
    os_distribution: str | None = None
    os_version: str | None = None
    public: bool = False
    network_name: str | None = None  # endpoint network_name as written (PUBLIC, net.PUBLIC, ...)
    ports: list[PortSpec] = field(default_factory=list)
    removal_list: list[str] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)
    requirements: list[tuple[str, str]] = field(default_factory=list)  # (relationship, target)
    properties: dict[str, Any] = field(default_factory=dict)
    capabilities: dict[str, dict[str, Any]] = field(default_factory=dict)  # all, as resolved
    artifacts: list[Artifact] = field(default_factory=list)
    position: Position | None = None


@dataclass
class Component:
    """Software configured on a Compute (anything hosted on one, directly or transitively)."""

    name: str
    type: str
    host: str  # name of the Compute it ends up on
    operations: list[Operation] = field(default_factory=list)
    requirements: list[tuple[str, str]] = field(default_factory=list)  # (relationship, target)
    properties: dict[str, Any] = field(default_factory=dict)
    artifacts: list[Artifact] = field(default_factory=list)
    position: Position | None = None


@dataclass
class Output:
    name: str
    value: Any
    description: str = ""
    position: Position | None = None


@dataclass
class Template:
    """A whole infrastructure as written, inputs resolved."""

    source_file: str
    version: str
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)  # final values
    computes: dict[str, Compute] = field(default_factory=dict)
    components: dict[str, Component] = field(default_factory=dict)
    outputs: dict[str, Output] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.metadata.get("infra_name") or self.metadata.get("template_name") or "")

    def node(self, name: str) -> Compute | Component | None:
        return self.computes.get(name) or self.components.get(name)
