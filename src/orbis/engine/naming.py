"""Node host names and the facts IM's recipes read as `IM_*` variables.

A node is named after its first interface's `dns_name` (IM's `#N#` becomes the VM number, so
`vnode-#N#` gives the vnode-1, vnode-2... a CLUES/EC3 cluster expects), else `<node>-<vm id>`;
the domain is the rest of the dns_name, else IM's `localdomain` (the rule itself is
model/hostnames.py, which the providers share). The "master" is the first VM
(the lowest VM number), as in IM. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from orbis.model.hostnames import given_name, host_name
from orbis.model.infrastructure import Compute, Template


class NodeFacts(Protocol):
    name: str
    vm_id: int
    private_ip: str | None
    public_ip: str | None
    site: str | None


def fqdn(compute: Compute | None, name: str, vm_id: int) -> str:
    host, domain = host_name(compute, name, vm_id)
    return f"{host}.{domain}"


def master(nodes: Iterable[NodeFacts]) -> NodeFacts | None:
    return min(nodes, key=lambda n: n.vm_id, default=None)


def network_ips(template: Template, node: NodeFacts) -> dict[str, str | None]:
    """IM_NODE_NET_<n>_IP: the address on each interface, public networks' the public one."""
    compute = template.computes.get(node.name)
    interfaces = sorted(compute.interfaces, key=lambda i: i.order) if compute else []
    if not interfaces:  # the implicit networks: the public one first when there is one
        ips = [node.public_ip, node.private_ip] if node.public_ip else [node.private_ip]
        return {f"IM_NODE_NET_{n}_IP": ip for n, ip in enumerate(ips)}
    found: dict[str, str | None] = {}
    for interface in interfaces:
        net = template.networks.get(interface.network)
        public = net.public if net is not None else interface.network == "public"
        found[f"IM_NODE_NET_{interface.order}_IP"] = (
            node.public_ip if public and node.public_ip else node.private_ip
        )
    return found


def im_variables(
    template: Template, node: NodeFacts, first: NodeFacts | None, infrastructure_id: str,
    cloud_type: str, cloud_server: str,
) -> dict[str, Any]:  # fmt: skip
    """The variables IM gives a node's recipes."""
    compute = template.computes.get(node.name)
    host, domain = host_name(compute, node.name, node.vm_id, given_name(node))
    facts: dict[str, Any] = {
        "IM_NODE_HOSTNAME": host,
        "IM_NODE_DOMAIN": domain,
        "IM_NODE_FQDN": f"{host}.{domain}",
        "IM_NODE_NUM": node.vm_id,
        "IM_NODE_VMID": node.vm_id,
        "IM_NODE_PRIVATE_IP": node.private_ip,
        "IM_NODE_PUBLIC_IP": node.public_ip,
        "IM_NODE_CLOUD_TYPE": cloud_type,
        "IM_NODE_CLOUD_SERVER": cloud_server,
        "IM_INFRASTRUCTURE_ID": infrastructure_id,
        **network_ips(template, node),
    }
    if first is not None:
        m_host, m_domain = host_name(template.computes.get(first.name), first.name, first.vm_id,
                                     given_name(first))
        facts |= {"IM_MASTER_HOSTNAME": m_host, "IM_MASTER_DOMAIN": m_domain,
                  "IM_MASTER_FQDN": f"{m_host}.{m_domain}"}  # fmt: skip
    return facts
