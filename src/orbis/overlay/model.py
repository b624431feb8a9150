"""The overlay's topology as data: who is a central point, a site router or a client."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from orbis.model.infrastructure import Position

CENTRAL_POINT = "tosca.nodes.indigo.VR.CentralPoint"
VROUTER = "tosca.nodes.indigo.VR.VRouter"
CLIENT = "tosca.nodes.indigo.VR.Client"
VR_TYPES = (CENTRAL_POINT, VROUTER, CLIENT)
# upstream's pool; the backup central point serves the next /24 down (its clients get a second
# address there), so that a node's two tunnels never share a subnet
DEFAULT_SUBNET = "192.168.255.0/24"
DEFAULT_BACKUP_SUBNET = "192.168.254.0/24"
PORT = 1194
FIRST_CLIENT_HOST = 10  # client addresses: subnet host FIRST_CLIENT_HOST + vm id


@dataclass(frozen=True)
class CentralPoint:
    """An OpenVPN server: `compute` hosts it; `subnet` is the overlay subnet it serves."""

    component: str
    compute: str
    subnet: str
    site: str | None = None  # when the template fixes it (cloud_id, local://SITE)
    position: Position | None = None

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def server_address(self) -> str:
        return str(self.network.network_address + 1)

    def client_address(self, vm_id: int) -> str:
        """A member's fixed overlay address on this central point (ccd ifconfig-push)."""
        return str(self.network.network_address + FIRST_CLIENT_HOST + vm_id)

    def capacity(self) -> int:
        """How many vm ids fit (the highest vm id that still gets an address, plus one)."""
        return self.network.num_addresses - FIRST_CLIENT_HOST - 1


@dataclass(frozen=True)
class Member:
    """A node that joins the star as a client: a site router (`router`) or a standalone one."""

    component: str
    compute: str
    router: bool
    central_point: str  # the component it names (its primary)
    site: str | None = None
    position: Position | None = None


@dataclass(frozen=True)
class StaticRoute:
    """RADL `router = 'CIDR,system'` on a network: its nodes reach CIDR through `system`."""

    network: str
    cidr: str
    system: str
    position: Position | None = None


@dataclass
class Overlay:
    """An infrastructure's overlay. `central_points[0]` is the primary (the one clients
    name), a second one is the backup on another site."""

    central_points: list[CentralPoint] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    routes: list[StaticRoute] = field(default_factory=list)

    @property
    def primary(self) -> CentralPoint | None:
        return self.central_points[0] if self.central_points else None

    @property
    def backup(self) -> CentralPoint | None:
        return self.central_points[1] if len(self.central_points) > 1 else None

    def vpn_computes(self) -> set[str]:
        """Computes that run OpenVPN."""
        return {c.compute for c in self.central_points} | {m.compute for m in self.members}

    def router_computes(self) -> set[str]:
        """Computes that forward packets for others (central points, routers, RADL routers)."""
        return ({c.compute for c in self.central_points}
                | {m.compute for m in self.members if m.router}
                | {r.system for r in self.routes})  # fmt: skip

    def central_point_of(self, compute: str) -> CentralPoint | None:
        return next((c for c in self.central_points if c.compute == compute), None)

    def member_of(self, compute: str) -> Member | None:
        return next((m for m in self.members if m.compute == compute), None)


def overlay_address(overlay: Overlay | None, row: Any, rows: list[Any]) -> str | None:
    """Where the other sites reach a node (`get_attribute: [X, overlay_address]`): a tunnel
    node's address on the primary central point's subnet; a node routed by its site's router,
    its private address (docs/overlay.md). `row`/`rows` are the store's node rows."""
    if overlay is None or overlay.primary is None:
        return None
    primary = overlay.primary
    if row.name == primary.compute:
        return primary.server_address
    if row.name in overlay.vpn_computes():
        return primary.client_address(row.vm_id)
    routed = {r.site for r in rows if not r.deleted and r.name in overlay.router_computes()}
    return row.private_ip if row.site in routed else None
