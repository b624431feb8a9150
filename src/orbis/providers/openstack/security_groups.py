"""Security groups (IM's): one per template network of the node, with the members' own
traffic, the network's outports, the node's ports where it is reached and SSH on public or
proxied networks; none for a node that routes for a network.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import openstack.exceptions as os_exc

from orbis.model.infrastructure import Compute, PortSpec
from orbis.providers.base import LABEL_INFRASTRUCTURE, NodeSpec
from orbis.providers.openstack.networks import _NetPlan, _routes
from orbis.providers.openstack.session import OpenStackSession

SG_DESCRIPTION = "Security group created by Orbis"


def _our_group(group: Any, infrastructure_id: str) -> bool:
    """Made by Orbis for this infrastructure: its tag, or its description if tagging failed."""
    return f"{LABEL_INFRASTRUCTURE}={infrastructure_id}" in (group.tags or []) or \
        group.description == f"{SG_DESCRIPTION} for {infrastructure_id}"  # fmt: skip


def _rule(port: PortSpec) -> dict[str, Any]:
    rule: dict[str, Any] = {"protocol": port.protocol.lower(),
                            "remote_ip_prefix": port.remote_cidr or "0.0.0.0/0"}  # fmt: skip
    if rule["protocol"] != "icmp":
        rule |= {"port_range_min": port.port, "port_range_max": port.range_end or port.port}
    return rule


class SecurityGroups(OpenStackSession):
    """The security groups of a node, looked up before made."""

    def _security_groups(self, spec: NodeSpec, compute: Compute, plan: _NetPlan) -> list[str]:
        """IM's groups: one per template network of the node, none for a node that routes."""
        if _routes(spec, compute):
            return []  # its ports go without port security (_configure_ports)
        infra = spec.infrastructure_id
        # the node's own ports open where it is reached: its public side, else its first net
        front = next((n for n in plan.nets if n.public), plan.nets[0] if plan.nets else None)
        groups = []
        for net in plan.nets:
            ports = list(net.outports)
            if net is front:
                ports += [*compute.ports, *spec.ports]
            if net.public or net.proxy_host:
                ports.append(PortSpec(22))
            groups.append(self._group(infra, net.sg_name or f"orbis-{infra}-{net.name}", ports))
        return groups

    def _group(self, infra: str, name: str, ports: list[PortSpec]) -> str:
        """The group named `name` (looked up first, made and marked if missing) with the
        members' own traffic and `ports` open; its id."""
        conn = self.conn

        def lookup() -> Any:
            found = conn.network.security_groups(name=name, project_id=conn.current_project_id)
            return next(iter(found), None)

        group = lookup()
        if group is None:
            try:
                group = conn.network.create_security_group(
                    name=name, description=f"{SG_DESCRIPTION} for {infra}")
            except os_exc.ConflictException:  # made meanwhile elsewhere (or over quota)
                group = lookup()
                if group is None:
                    raise
            else:
                conn.network.set_tags(group, self._tags(infra))
        rules: list[dict[str, Any]] = [{"protocol": proto, "port_range_min": 1,
                                        "port_range_max": 65535, "remote_group_id": group.id}
                                       for proto in ("tcp", "udp")]  # fmt: skip
        rules += [_rule(p) for p in dict.fromkeys(ports)]
        for rule in rules:
            with suppress(os_exc.ConflictException):  # already there (another node added it)
                conn.network.create_security_group_rule(
                    security_group_id=group.id, direction="ingress", ethertype="IPv4", **rule)
        return str(group.id)
