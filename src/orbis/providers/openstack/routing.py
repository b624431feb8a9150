"""A server that forwards for others (IM's network `router = 'CIDR,system'`, the overlay's site
routers): its ports without port security (Neutron drops forwarded packets otherwise, as their
source is not the port's address), and each CIDR in the host routes of its subnets, via its
address there, so DHCP tells the subnet's other servers; the routes go with the server. For
the overlay (`route_through`), the infrastructure's security groups also admit the routed
private ranges.

IM's way, kept: port security off (and so no security groups on those ports) rather than
allowed address pairs covering the routed CIDRs, which would keep the groups but need one pair
per CIDR in both directions and still drop what the groups do not admit (docs/overlay.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from contextlib import suppress
from typing import Any

import openstack.exceptions as os_exc

from orbis.providers.base import LABEL_INFRASTRUCTURE, NotFound, private_ranges
from orbis.providers.openstack.session import OpenStackSession


def _v4(port: Any) -> list[dict[str, str]]:
    return [f for f in port.fixed_ips or [] if ":" not in f["ip_address"]]


class Routing(OpenStackSession):
    def route_through(self, provider_id: str, cidrs: Sequence[str],
                      drop: Sequence[str] = ()) -> tuple[str, ...]:  # fmt: skip
        """The overlay's site router (providers/base.py): no port security on the server's
        ports on networks of the project (not on an external one, where routes are not ours
        to set), `cidrs` in the host routes of their subnets."""
        conn = self.conn
        with self._errors(f"route {', '.join(cidrs)} through {provider_id}"):
            server = self._server(provider_id)
            if server is None:
                raise NotFound(f"{self.site}: server {provider_id} not found")
            external = {n.id for n in conn.network.networks(is_router_external=True)}
            ports = [p for p in conn.network.ports(device_id=server.id)
                     if p.network_id not in external]  # fmt: skip
            self._unsecure(ports)
            warnings: list[str] = []
            infra = (server.metadata or {}).get(LABEL_INFRASTRUCTURE, "")
            with self._infra_locks[infra]:  # one subnet, several routers: one update at a time
                for port in ports:
                    for fixed in _v4(port):
                        warnings += self._add_host_routes(fixed["subnet_id"], cidrs,
                                                          fixed["ip_address"], drop)  # fmt: skip
                if infra:
                    own = [ipaddress.ip_network(conn.network.get_subnet(f["subnet_id"]).cidr)
                           for port in ports for f in _v4(port)]  # fmt: skip
                    self._admit(infra, [c for c in private_ranges(cidrs) if not any(
                        ipaddress.ip_network(c).overlaps(o) for o in own)])  # fmt: skip
            return tuple(warnings)

    def _admit(self, infra: str, private: list[str]) -> None:
        """The infrastructure's security groups here take any traffic from the routed CIDRs
        that are private ranges outside the router's own subnets (the other sites and the
        overlay pools), else what another site opens to a node of this one would stop at its
        group. Existing rules are kept."""
        conn = self.conn
        for group in conn.network.security_groups(tags=f"{LABEL_INFRASTRUCTURE}={infra}"):
            have = {r.get("remote_ip_prefix") for r in group.security_group_rules or []
                    if r.get("direction") == "ingress" and r.get("protocol") is None}
            for cidr in private:
                if cidr in have:
                    continue
                with suppress(os_exc.ConflictException):  # made meanwhile: as good
                    conn.network.create_security_group_rule(
                        security_group_id=group.id, direction="ingress", ethertype="IPv4",
                        remote_ip_prefix=cidr)  # fmt: skip

    def _unsecure(self, ports: Iterable[Any]) -> None:
        """Port security off; Neutron refuses that while the port has security groups or
        allowed address pairs, so they go in the same update."""
        for port in ports:
            if port.is_port_security_enabled or port.security_group_ids:
                self.conn.network.update_port(port, security_group_ids=[],
                                              allowed_address_pairs=[],
                                              is_port_security_enabled=False)  # fmt: skip

    def _add_host_routes(self, subnet_id: str, cidrs: Iterable[str], nexthop: str,
                         drop: Iterable[str] = ()) -> list[str]:  # fmt: skip
        """Each CIDR via `nexthop` in the subnet's host routes (replacing a route to the same
        CIDR through another address: a router made anew); a CIDR overlapping the subnet
        itself is skipped with a warning. Routes to `drop` via `nexthop` are removed (through
        another address they are not this router's)."""
        subnet = self.conn.network.get_subnet(subnet_id)
        own = ipaddress.ip_network(subnet.cidr)
        current = [dict(r) for r in subnet.host_routes or []]
        gone = {str(ipaddress.ip_network(c, strict=False)) for c in drop}
        routes = [r for r in current
                  if not (r.get("destination") in gone and r.get("nexthop") == nexthop)]
        warnings: list[str] = []
        for cidr in cidrs:
            network = ipaddress.ip_network(cidr, strict=False)
            if network.version != own.version:
                continue
            if network.overlaps(own):
                warnings.append(f"{self.site}: {cidr} not routed via {nexthop}: it overlaps "
                                f"its subnet {subnet.cidr}")  # fmt: skip
                continue
            route = {"destination": str(network), "nexthop": nexthop}
            if route in routes:
                continue  # there already, where it is (no update for a new order)
            routes = [r for r in routes if r.get("destination") != route["destination"]]
            routes.append(route)
        if routes != current:
            self.conn.network.update_subnet(subnet, host_routes=routes)
        return warnings

    def _drop_host_routes(self, ports: Iterable[Any]) -> None:
        """Host routes through these ports' addresses (their server is going): a subnet is
        often the project's own, and a route to a gone server would stay a black hole."""
        for port in ports:
            for fixed in _v4(port):
                try:
                    subnet = self.conn.network.get_subnet(fixed["subnet_id"])
                except os_exc.NotFoundException:
                    continue
                current = [dict(r) for r in subnet.host_routes or []]
                kept = [r for r in current if r.get("nexthop") != fixed["ip_address"]]
                if kept != current:
                    with suppress(os_exc.NotFoundException):
                        self.conn.network.update_subnet(subnet, host_routes=kept)
