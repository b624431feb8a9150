"""Neutron networks as IM plans them: the site's networks classified (public, floating-IP
pool, default), the node's NICs and floating-IP pools, the infrastructure's private network
and router made when the project has none, and what Nova cannot set at boot (additional
addresses, a routing node's port security and host routes).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from orbis.model.infrastructure import Compute, Network
from orbis.providers.base import NodeSpec, NotFound, ProviderError, QuotaExceeded
from orbis.providers.openstack.routing import Routing
from orbis.providers.openstack.session import _orbis_tags, _private_cidr, _slug

DEFAULT_CIDR = "10.0.*.0/24"


@dataclass
class _SiteNet:
    """A Neutron network as IM classifies it."""

    id: str
    name: str
    public: bool
    pool: bool  # router:external: floating IPs come from it
    tags: list[str] = field(default_factory=list)
    subnets: list[str] = field(default_factory=list)


@dataclass
class _NetPlan:
    nics: list[str] = field(default_factory=list)  # network ids, in interface order
    fip_pools: list[_SiteNet] = field(default_factory=list)  # where a floating IP comes from
    public: bool = False  # plugged straight into a public network
    nets: list[Network] = field(default_factory=list)  # template networks kept for the node
    ids: dict[str, str] = field(default_factory=dict)  # template network -> Neutron id (NICs)


def _routes(spec: NodeSpec, compute: Compute) -> list[tuple[Network, str]]:
    """(network, cidr) for each template network whose `router = "cidr,system"` names this
    node as the system."""
    found = []
    for net in spec.networks:
        cidr, _, system = (net.router or "").partition(",")
        if cidr.strip() and system.strip() in (spec.name, compute.name):
            found.append((net, cidr.strip()))
    return found


def _by_name(site: list[_SiteNet], name: str | None) -> _SiteNet | None:
    return next((n for n in site if n.name == name), None) if name else None


def _node_networks(spec: NodeSpec, compute: Compute) -> list[Network]:
    """The template networks this node connects to, in interface order."""
    by_name = {n.name: n for n in spec.networks}
    names = [i.network for i in sorted(compute.interfaces, key=lambda i: i.order)]
    if not names:
        names = [n.name for n in spec.networks if not n.public][:1] or ["private"]
        if spec.public or compute.public:
            names += [n.name for n in spec.networks if n.public][:1] or ["public"]
    return [by_name.get(n) or Network(name=n, public=n == "public") for n in names]


def _free_cidr(pattern: str, taken: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """The first CIDR matching `pattern` (`*` = 0..255) that overlaps no existing subnet."""
    if "*" not in pattern:
        return pattern
    for index in range(256):
        candidate = ipaddress.ip_network(pattern.replace("*", str(index), 1).replace("*", "0"))
        if not any(candidate.overlaps(t) for t in taken if t.version == candidate.version):
            return str(candidate)
    raise QuotaExceeded(f"no free network range matches {pattern}")


class Networks(Routing):
    """The networks a server is plugged into."""

    def _site_networks(self) -> list[_SiteNet]:
        """Every network the project sees, classified and ordered as IM does."""
        conn = self.conn
        cidrs: dict[str, str] = {}
        for subnet in conn.network.subnets():
            if subnet.ip_version == 4:
                cidrs.setdefault(subnet.network_id, subnet.cidr)
        nets = []
        for net in conn.network.networks():
            pool = bool(net.is_router_external)
            cidr = cidrs.get(net.id)
            nets.append(_SiteNet(net.id, net.name, public=not _private_cidr(cidr) if cidr
                                 else pool, pool=pool, tags=list(net.tags or []),
                                 subnets=list(net.subnet_ids or [])))  # fmt: skip
            nets[-1].tags += ["default"] if net.is_default or "default" in \
                f"{net.name} {net.description}".lower() else []  # fmt: skip
        return sorted(nets, key=lambda n: "default" not in n.tags)

    def _plan_networks(self, spec: NodeSpec, compute: Compute) -> _NetPlan:
        """Which networks the server is plugged into and which pools give its public IP,
        creating the infrastructure's private network and router when the project has none."""
        wanted = _node_networks(spec, compute)
        site = self._site_networks()
        pools = [n for n in site if n.pool]
        private = [n for n in wanted if not n.public]
        public = [n for n in wanted if n.public]
        if public and not pools and not any("enable_two_nics" in n.tags for n in site):
            private = []  # no floating IPs here: the node sits on the provider network itself
        plan, used = _NetPlan(nets=[n for n in wanted if n.public or private]), set()
        for net in private:
            ours = f"orbis-{spec.infrastructure_id}-{_slug(net.name)}"
            found = _by_name(site, net.provider_id) if net.provider_id else None
            if net.provider_id and found is None:
                raise NotFound(f"{self.site}: network {net.provider_id} not found")
            found = found or _by_name(site, ours) or (None if net.create else next(
                (n for n in site if not n.public and not n.pool and n.id not in used
                 and not _orbis_tags(n.tags)), None))  # another infrastructure's is not ours
            if found is None:
                found = self._create_network(spec.infrastructure_id, ours, net, site, public)
            if found.id in used:
                raise ProviderError(f"{self.site}: network {found.name} is used twice")
            used.add(found.id)
            plan.nics.append(found.id)
            plan.ids[net.name] = found.id
        for net in public:
            named = _by_name(site, net.provider_id) if net.provider_id else None
            if net.provider_id and named is None:
                raise NotFound(f"{self.site}: public network {net.provider_id} not found")
            if plan.nics and pools and (named is None or named.pool):
                # public through a floating IP: the named pool first, then the others
                plan.fip_pools += sorted(pools, key=lambda p: p is not named)
                continue
            direct = named or next((n for n in site if n.public and not n.pool
                                    and n.id not in used), None) or (pools[0] if pools else None)
            if direct is None:
                raise NotFound(f"{self.site}: no public network for {net.name}")
            if direct.pool and plan.nics:
                raise ProviderError(f"{self.site}: {direct.name} is a floating-IP pool; it is "
                                    "only attached as a node's sole interface")  # fmt: skip
            used.add(direct.id)
            plan.nics.append(direct.id)
            plan.ids[net.name] = direct.id
            plan.public = True
        if not plan.nics:
            raise NotFound(f"{self.site}: no network to attach {compute.name} to")
        return plan

    def _create_network(self, infra: str, name: str, net: Network, site: list[_SiteNet],
                        public: list[Network]) -> _SiteNet:  # fmt: skip
        """A private network + subnet on a free CIDR, plugged into a router to the outside."""
        conn = self.conn
        taken = [ipaddress.ip_network(s.cidr) for s in conn.network.subnets() if s.ip_version == 4]
        cidr = _free_cidr(net.cidr or DEFAULT_CIDR, taken)
        created = conn.network.create_network(name=name,
                                              description=f"Network created by Orbis for {infra}")
        conn.network.set_tags(created, self._tags(infra))
        subnet = conn.network.create_subnet(name=f"{name}-subnet", network_id=created.id,
                                            ip_version=4, cidr=cidr)  # fmt: skip
        pools = [n for n in site if n.pool]
        if pools:
            named = {p.provider_id for p in public if p.provider_id}
            preferred = sorted(pools, key=lambda p: (p.name not in named, not p.public))
            # the site's router to the outside; another infrastructure's would go with it
            routers = [r for r in conn.network.routers() if not _orbis_tags(r.tags)]
            router = next((r for pool in preferred for r in routers
                           if (r.external_gateway_info or {}).get("network_id") == pool.id), None)
            if router is None:
                router = conn.network.create_router(
                    name=f"orbis-{infra}", external_gateway_info={"network_id": preferred[0].id})
                conn.network.set_tags(router, self._tags(infra))
            conn.network.add_interface_to_router(router, subnet=subnet.id)
        return _SiteNet(created.id, name, public=False, pool=False, subnets=[subnet.id])

    def _configure_ports(self, server: Any, spec: NodeSpec, compute: Compute,
                         plan: _NetPlan) -> tuple[str, ...]:  # fmt: skip
        """What Nova cannot say at boot: `additional_ip` as allowed address pairs; for a node
        that routes for a network, no port security and the subnet's host route through it."""
        conn, routes = self.conn, _routes(spec, compute)
        extra: dict[str, list[str]] = {}  # Neutron network id -> additional addresses
        for iface in compute.interfaces:
            if iface.additional_ip and iface.network in plan.ids:
                extra.setdefault(plan.ids[iface.network], []).extend(
                    a.strip() for a in iface.additional_ip.split(",") if a.strip())
        ports = list(conn.network.ports(device_id=server.id))
        if routes:
            self._unsecure(ports)  # IM: a router's ports go without port security
        for port in [] if routes else ports:
            pairs = list(port.allowed_address_pairs or [])
            known = {p.get("ip_address") for p in pairs}
            new = [{"ip_address": a} for a in extra.get(port.network_id, []) if a not in known]
            if new:
                conn.network.update_port(port, allowed_address_pairs=pairs + new)
        warnings = []
        with self._infra_locks[spec.infrastructure_id]:  # two routers: one subnet update each
            for net, cidr in routes:
                on_net = next((p for p in ports if p.network_id == plan.ids.get(net.name)), None)
                fixed = next((f for f in (on_net.fixed_ips if on_net else [])
                              if ":" not in f["ip_address"]), None)  # fmt: skip
                if fixed is None:
                    warnings.append(f"{self.site}: {compute.name} routes {cidr} for network "
                                    f"{net.name} but has no address on it")  # fmt: skip
                    continue
                warnings += self._add_host_routes(fixed["subnet_id"], [cidr],
                                                  fixed["ip_address"])  # fmt: skip
        return tuple(warnings)
