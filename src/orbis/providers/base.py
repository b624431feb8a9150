"""What every provider (cloud back-end) offers the engine.

A provider is thin: it launches, inspects and removes machines, and reports typed errors. It
never retries, orders or places anything — the engine decides that. Methods are blocking (cloud
SDKs are); the engine calls them in worker threads. Everything a provider creates is tagged with
the infrastructure id and node id, so `list_owned` can always find it again (no orphans).
"""

from __future__ import annotations

import ipaddress
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orbis.model.infrastructure import Compute, Network, PortSpec, Volume
from orbis.model.states import NodeState

LABEL_INFRASTRUCTURE = "orbis.infrastructure"
LABEL_NODE = "orbis.node"  # "<node template name>.<vm id>"
# The Orbis installation (one database, however many service processes) that made a resource:
# several installations may share one cloud account or one container engine, and each must
# only ever list, adopt or sweep its own.
LABEL_INSTALLATION = "orbis.installation"
# what inspect/list_owned need to report a machine as launch did
LABEL_VM_ID = "orbis.vm_id"
LABEL_PUBLIC = "orbis.public"
LABEL_SSH_USER = "orbis.ssh_user"
# The owner mark (orbis.ownership): a keyed hash of the owner, so an import adopts only what
# its importer owns, and a local volume_id names only the owner's own volumes.
LABEL_OWNER = "orbis.owner"
# On an infrastructure's recipe runner (orbis/runner): removed with the infrastructure (it
# carries LABEL_INFRASTRUCTURE) but never listed, found or counted as one of its machines.
LABEL_RUNNER = "orbis.runner"


# address spaces meant for private networks (RFC 1918, carrier-grade NAT): the only ones a
# router's security-group rules admit from (route_through)
PRIVATE_RANGES = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12",
                                                          "192.168.0.0/16", "100.64.0.0/10"))


def private_ranges(cidrs: Iterable[str]) -> list[str]:
    """The CIDRs (normalised) that lie inside a private address space."""
    found = []
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        if isinstance(net, ipaddress.IPv4Network) and any(net.subnet_of(p) for p in PRIVATE_RANGES):
            found.append(str(net))
    return found


class ProviderError(Exception):
    """A provider could not do what was asked; the message is the cloud's, made readable."""


class ProviderAuthError(ProviderError):
    """Credentials were refused."""


class QuotaExceeded(ProviderError):
    """The site has no room for this node."""


class NotFound(ProviderError):
    """An image, flavor, network or machine does not exist."""


class Transient(ProviderError):
    """Worth trying again later (timeouts, throttling, a busy API)."""


@dataclass(frozen=True)
class NodeSpec:
    """Everything needed to launch one machine."""

    infrastructure_id: str
    vm_id: int
    name: str  # node template name
    image: str | None = None
    num_cpus: float | None = None
    mem_size: int | None = None  # bytes
    public: bool = False
    ports: tuple[PortSpec, ...] = ()
    ssh_public_key: str = ""
    hostname: str | None = None
    # -- what cloud providers need beyond the basics (the local back-end ignores them) --
    compute: Compute | None = field(default=None, compare=False)  # the full node description
    networks: tuple[Network, ...] = field(default=(), compare=False)  # the template's networks
    user_data: str = ""  # cloud-init document (see providers/cloudinit.py)
    ssh_user: str = "cloudadm"  # the login user cloud-init creates (IM's default)
    owner_mark: str = ""  # LABEL_OWNER's value for what this launch makes ("" = none)
    net_rights: str = ""  # overlay.rights: "" | "routes" | "tunnel" (kernel rights it needs)


@dataclass(frozen=True)
class Machine:
    """A machine as the provider sees it now."""

    provider_id: str
    state: NodeState
    private_ip: str | None = None
    public_ip: str | None = None
    ssh_user: str = "root"
    ssh_port: int = 22
    infrastructure_id: str | None = None
    vm_id: int | None = None
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Flavor:
    """A machine size a site offers."""

    id: str
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int = 0
    gpus: int = 0
    gpu_vendor: str | None = None
    gpu_model: str | None = None
    sgx: bool = False
    pci_devices: int = 0
    price: float | None = None  # per hour, when the site says
    arch: tuple[str, ...] = ()  # empty = any
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Image:
    """A machine image a site offers."""

    id: str
    name: str
    url: str  # how a template names it (ost://host/id, aws://region/ami, ...)
    os_distro: str | None = None
    os_version: str | None = None


@dataclass(frozen=True)
class QuotaUse:
    used: float
    limit: float  # negative = unlimited

    @property
    def free(self) -> float:
        return float("inf") if self.limit < 0 else self.limit - self.used


class Provider(ABC):
    """The verbs of a back-end. One module per cloud implements them."""

    name: str = "abstract"
    site: str = "local"  # the site (auth line id or catalogue name) this instance talks to
    installation: str | None = None  # set by the service: see LABEL_INSTALLATION
    # True for the simulated cloud: nodes need no SSH, configuration is only simulated
    simulated: bool = False
    config_seconds: float = 0.0
    # Can the service reach a node's private address directly? Not on a cloud: nodes without a
    # public address are reached through one that has one (SSH jump).
    private_reachable: bool = False
    ssh_timeout: float = 600.0  # cloud VMs boot in minutes

    @abstractmethod
    def prepare(self, infrastructure_id: str) -> None:
        """Create what the infrastructure's nodes share (network, security group). Idempotent."""

    @abstractmethod
    def launch(self, spec: NodeSpec) -> Machine:
        """Start one machine and return it once it has addresses. Idempotent per (infra, vm_id):
        a machine already launched for this spec is returned instead of a second one."""

    @abstractmethod
    def inspect(self, provider_id: str) -> Machine:
        """The machine's current state and addresses; state OFF if it is gone."""

    @abstractmethod
    def destroy(self, provider_id: str) -> None:
        """Remove one machine. Removing a machine that is already gone is not an error."""

    @abstractmethod
    def cleanup(self, infrastructure_id: str) -> None:
        """Remove every resource labelled with this infrastructure (machines, networks)."""

    @abstractmethod
    def list_owned(self) -> list[Machine]:
        """Every machine this installation holds here under Orbis labels, whatever the store
        says."""

    def owner_mark_of(self, provider_id: str) -> str | None:
        """The owner mark (LABEL_OWNER) the machine carries; None when it has none, is gone, or
        this back-end cannot tell (then an import leaves the node detached)."""
        return None

    def owned_infrastructures(self) -> set[str]:
        """Ids of infrastructures that own anything here (machines, networks...)."""
        return {m.infrastructure_id for m in self.list_owned() if m.infrastructure_id}

    def alter(self, provider_id: str, num_cpus: float | None, mem_size: int | None) -> None:
        """Resize a machine in place."""
        raise ProviderError(f"{self.name}: resizing a machine is not supported")

    def stop(self, provider_id: str) -> None:
        raise ProviderError(f"{self.name}: stop is not supported")

    def start(self, provider_id: str) -> None:
        raise ProviderError(f"{self.name}: start is not supported")

    def reboot(self, provider_id: str) -> None:
        raise ProviderError(f"{self.name}: reboot is not supported")

    def add_disk(self, provider_id: str, volume: Volume) -> str:
        """Attach a new data disk to a running machine (IM's alter with a new disk.N): a blank
        volume of `volume.size` (`volume.type` as the cloud's volume type), or the existing
        volume `volume.volume_id`. Blocks until attached; returns the device the cloud reports
        ("/dev/vdc"), "" when it does not say. A disk made here goes with the machine (destroy,
        cleanup); an existing volume is only detached."""
        raise ProviderError(f"{self.name}: adding disks to a running machine is not supported")

    # -- a machine that forwards for others (IM's network `router`, the overlay's site routers) --
    def route_through(self, provider_id: str, cidrs: Sequence[str],
                      drop: Sequence[str] = ()) -> tuple[str, ...]:  # fmt: skip
        """Make the machine a router for `cidrs` on its cloud network: the cloud's anti-spoofing
        off for it (OpenStack: port security; EC2: the source/destination check), and a route
        to each CIDR via its private address there (OpenStack: its subnets' host routes; EC2:
        its subnet's route table). The routes to `drop` through this machine are removed (a
        site gone); routes to other CIDRs are left as they are. Idempotent; the routes go when
        the machine is destroyed. Returns warnings (a CIDR skipped, and why).
        Back-ends whose nodes route by themselves (the local one) do nothing."""
        return ()

    # -- disk snapshots (IM's PUT .../vms/<vm>/disks/<n>/snapshot) ---------------------------
    def snapshot(self, provider_id: str, disk: int, name: str) -> str:
        """Save disk number `disk` of a machine (0 = the boot disk) as a new image called
        `name`, and return the image's URL in IM form (ost://host/id, aws://region/ami,
        docker://name) -- one a template can boot new nodes from. Blocks until the image is
        usable or the cloud reports it failed."""
        raise ProviderError(f"{self.name}: saving disks as images is not supported")

    def delete_image(self, url: str) -> None:
        """Delete an image `snapshot` made (IM's auto_delete, when the infrastructure goes).
        An image that is already gone is not an error."""
        raise ProviderError(f"{self.name}: deleting images is not supported")

    # -- what the site offers (site catalogue, placement); empty when the back-end cannot say --
    def flavors(self) -> list[Flavor]:
        return []

    def images(self) -> list[Image]:
        return []

    def quotas(self) -> dict[str, QuotaUse]:
        """Keys as IM names them: cores, ram (MB), instances, floating_ips, volumes..."""
        return {}
