"""Data classes of a parsed infrastructure template (language independent).

A `Template` is the desired shape of an infrastructure: compute nodes (each deployed `count`
times), software components hosted on them, and outputs. Values that can only be known once
nodes exist (addresses, ids) stay as unevaluated `Function` values until then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from orbis.model.elastic import ElasticCluster
    from orbis.overlay.model import Overlay


class Position(NamedTuple):
    """Where something was written: file, 1-based line and column.

    A named tuple rather than a frozen dataclass: loaders make one for every YAML node, and
    tuples are several times cheaper to create."""

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
    # -- the rest of IM's machine description (TOSCA capabilities or RADL system features) --
    instance_name: str | None = None
    instance_type: str | None = None
    cpu_arch: str | None = None
    num_gpus: int | None = None
    gpu_vendor: str | None = None
    gpu_model: str | None = None
    spot: bool | None = None
    min_instances: int | None = None
    max_instances: int | None = None
    credentials: Credentials | None = None
    interfaces: list[NetworkInterface] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    cloud_id: str | None = None  # placement: the auth line id of the cloud to deploy on
    availability_zone: str | None = None
    galaxy_roles: list[str] = field(default_factory=list)  # "name" or "name,version"
    galaxy_collections: list[str] = field(default_factory=list)
    # features with no field of their own, by RADL name (e.g. "cpu.sgx": True)
    features: dict[str, Any] = field(default_factory=dict)
    position: Position | None = None


@dataclass(frozen=True)
class Credentials:
    """How to log in to a machine (IM's os.credential / disk.0.os.credentials.*)."""

    username: str
    password: str | None = None
    private_key: str | None = None
    public_key: str | None = None


@dataclass
class Network:
    """A network the nodes connect to (TOSCA Network node, RADL network, or implicit)."""

    name: str
    public: bool = False  # RADL outbound = 'yes'
    provider_id: str | None = None  # the network's name at the provider
    cidr: str | None = None
    create: bool = False
    router: str | None = None  # static route 'net_cidr,system'
    gateway_ip: str | None = None
    sg_name: str | None = None
    proxy_host: str | None = None  # SSH jump host 'user[:pass]@host[:port]'
    proxy_key: str | None = None
    outports: list[PortSpec] = field(default_factory=list)
    implicit: bool = False  # made by the loader (TOSCA endpoints), not written by the user
    properties: dict[str, Any] = field(default_factory=dict)
    position: Position | None = None


@dataclass
class NetworkInterface:
    """A machine's connection to a network (RADL net_interface.N, TOSCA Port or endpoint)."""

    network: str
    order: int = 0
    ip: str | None = None  # a fixed address, when asked for
    dns_name: str | None = None
    additional_dns_names: list[str] = field(default_factory=list)
    additional_ip: str | None = None


@dataclass
class Volume:
    """A disk of a machine beyond its root disk (RADL disk.N, N >= 1; TOSCA BlockStorage)."""

    name: str  # the BlockStorage node name, or "disk.N"
    index: int = 1
    size: int | None = None  # bytes
    volume_id: str | None = None  # attach this existing volume (disk.N.image.url)
    type: str | None = None
    mount_path: str | None = None
    device: str | None = None
    fs_type: str | None = None
    position: Position | None = None


@dataclass
class ContainerApp:
    """An application run as containers on Kubernetes (tosca.nodes.Container.Application)."""

    name: str
    type: str
    image: str
    count: int = 1
    num_cpus: float | None = None
    mem_size: int | None = None
    num_gpus: int | None = None
    environment: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    volumes: list[tuple[str, str]] = field(default_factory=list)  # (volume node, mount path)
    storage: dict[str, Volume] = field(default_factory=dict)  # the BlockStorage nodes named
    publish_ports: list[PortSpec] = field(default_factory=list)
    expose_ports: list[PortSpec] = field(default_factory=list)
    # {name, path, content|url, encoding?}; encoding "base64": the file is the decoded bytes
    config_files: list[dict[str, Any]] = field(default_factory=list)
    # the first published port's endpoint, `http(s)://<DNS name><path>`: routed by an Ingress
    ingress_url: str | None = None
    namespace: str | None = None
    cloud_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    position: Position | None = None


@dataclass
class ServerlessFunction:
    """A function on OSCAR or AWS Lambda (tosca.nodes.aisprint.FaaS.Function, or a RADL system
    IM's OSCAR or Lambda connector takes: lang/radl/functions.py)."""

    name: str
    type: str
    image: str | None = None
    script: str | None = None
    count: int = 1
    memory: int | None = None  # bytes
    cpu: float | None = None
    environment: dict[str, str] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    storage_providers: dict[str, Any] = field(default_factory=dict)
    host: str | None = None  # the OSCAR component it is created on; None = standalone
    cloud_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    position: Position | None = None


@dataclass
class Policy:
    """A TOSCA policy (placement, scaling...), with targets expanded from groups."""

    name: str
    type: str
    targets: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
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
    step: int | None = None  # an explicit configuration level (RADL contextualize step)
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
    networks: dict[str, Network] = field(default_factory=dict)
    containers: dict[str, ContainerApp] = field(default_factory=dict)
    functions: dict[str, ServerlessFunction] = field(default_factory=dict)
    policies: list[Policy] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    # contextualization as a whole: None = IM's default; False = disabled (RADL "contextualize ()")
    contextualize: bool | None = None
    ctxt_max_time: int | None = None
    warnings: list[str] = field(default_factory=list)
    elastic: ElasticCluster | None = None  # workers powered on/off from the job queue
    overlay: Overlay | None = None  # the private network across sites (orbis.overlay)

    @property
    def name(self) -> str:
        return str(self.metadata.get("infra_name") or self.metadata.get("template_name") or "")

    def counts(self) -> dict[str, int]:
        """How many of each deployable node: machines, and container apps (IM: one system
        each, 0 or 1)."""
        counts = {c.name: c.count for c in self.computes.values()}
        counts.update({a.name: a.count for a in self.containers.values()})
        return counts

    def systems(self) -> dict[str, int]:
        """IM's systems (its translation's `deploy` entries) with their counts: machines,
        container apps and standalone functions; a hosted function is a step of its OSCAR
        node's machine in IM, not a system."""
        counts = self.counts()
        counts.update({f.name: f.count for f in self.functions.values() if f.host is None})
        return counts

    def node(self, name: str) -> Compute | Component | None:
        return self.computes.get(name) or self.components.get(name)
