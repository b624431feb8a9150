"""Networks: explicit Network/Port nodes, and the implicit networks IM builds from endpoints.

Implicit (IM §2.1): every Compute gets the shared private network unless it is public-only
(`private_ip: false`), and each public Compute gets its *own* public network (`public_net`,
`public_net_1`, ...) so outports can differ; a private network whose systems' images live on
different clouds is cloned per cloud as `<network>.<host>`.
Explicit (§2.2): Ports bound to a Compute replace that logic for it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from orbis.lang.errors import suggest
from orbis.lang.tosca.context import NETWORK, PORT, Context, NodeTemplate
from orbis.lang.yaml_positions import child_pos
from orbis.model.infrastructure import Compute, Network, NetworkInterface, PortSpec, Template

PRIVATE_NET = "private_net"
PUBLIC_NET = "public_net"


def _split_network_name(name: str | None) -> tuple[str | None, str | None]:
    """network_name → (provider id of the private network, provider id of the public one)."""
    text = (name or "").strip()
    upper = text.upper()
    if upper in ("", "PUBLIC", "PRIVATE"):
        return None, None
    if upper.endswith(".PUBLIC"):
        return None, text[: -len(".PUBLIC")]
    if upper.endswith(".PRIVATE"):
        return text[: -len(".PRIVATE")], None
    if "," in text:  # OpenStack: private network plus a floating IP pool
        net, pool = (part.strip() for part in text.split(",", 1))
        return net or None, pool or None
    return text, None


def map_network(ctx: Context, node: NodeTemplate, props: dict[str, Any]) -> Network | None:
    net = Network(
        name=node.name,
        public=str(props.get("network_type") or "").lower() == "public",
        provider_id=_str(props.get("network_name")),
        cidr=_str(props.get("cidr")),
        gateway_ip=_str(props.get("gateway_ip")),
        properties=props,
        position=node.position,
    )
    net.create = net.cidr is not None  # IM creates a network it is given a CIDR for
    if net.gateway_ip and "," in net.gateway_ip:  # IM: 'CIDR,system' is RADL's `router`
        net.router = net.gateway_ip
    proxy = props.get("proxy_host")
    if proxy not in (None, ""):  # IM: an empty proxy_host (the catalogue's default) is no proxy
        cred = props.get("proxy_credential")
        pos = child_pos(node.section("properties"), "proxy_host", node.position)
        if not isinstance(cred, dict) or not cred.get("user"):
            ctx.problems.add(
                pos,
                f"network '{node.name}': proxy_host needs a proxy_credential with a 'user'",
                "proxy_credential: {user: ..., token: ..., token_type: password|private_key}",
            )
            return net
        user, token = str(cred["user"]), cred.get("token")
        if str(cred.get("token_type") or "password") == "private_key":
            net.proxy_host, net.proxy_key = f"{user}@{proxy}", None if token is None else str(token)
        else:
            secret = f":{token}" if token not in (None, "") else ""
            net.proxy_host = f"{user}{secret}@{proxy}"
    return net


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _ports_of(ctx: Context, template: Template) -> dict[str, list[tuple[NodeTemplate, str]]]:
    """Compute name → [(Port node, linked network)], checking bindings and links."""
    out: dict[str, list[tuple[NodeTemplate, str]]] = {}
    for node in ctx.nodes.values():
        if node.kind != PORT:
            continue
        reqs = {r.name: r for r in node.requirements}
        binding, link = reqs.get("binding"), reqs.get("link")
        if link is None or binding is None:
            missing = "link" if link is None else "binding"
            ctx.problems.add(
                node.position,
                f"port '{node.name}' has no '{missing}' requirement",
                "a Port needs 'binding: <compute>' and 'link: <network>'",
            )
            continue
        if ctx.nodes[link.target].kind != NETWORK:
            networks = [n for n, t in ctx.nodes.items() if t.kind == NETWORK]
            ctx.problems.add(
                link.position,
                f"port '{node.name}' is linked to '{link.target}', which is not a defined network",
                suggest(link.target, networks),
            )
            continue
        if binding.target not in template.computes:
            ctx.problems.add(
                binding.position,
                f"port '{node.name}' is bound to '{binding.target}', not a Compute",
            )
            continue
        out.setdefault(binding.target, []).append((node, link.target))
    return out


class _Builder:
    def __init__(self, ctx: Context, template: Template) -> None:
        self.ctx, self.template = ctx, template
        self.private: dict[str | None, str] = {}  # provider id → implicit private network
        self.next_index: dict[str, int] = {}

    def new_name(self, base: str) -> str:
        name, i = base, self.next_index.get(base, 0)
        if i:
            name = f"{base}_{i}"
        while name in self.template.networks or name in self.ctx.nodes:
            i += 1
            name = f"{base}_{i}"
        self.next_index[base] = i + 1  # linear: names are only ever added
        return name

    def add(self, name: str, public: bool, provider_id: str | None) -> Network:
        net = Network(name, public=public, provider_id=provider_id, implicit=True)
        self.template.networks[name] = net
        return net

    def private_net(self, provider_id: str | None) -> Network:
        if provider_id not in self.private:
            self.private[provider_id] = self.add(
                self.new_name(PRIVATE_NET), False, provider_id
            ).name
        return self.template.networks[self.private[provider_id]]

    def implicit(self, compute: Compute) -> None:
        endpoint = compute.capabilities.get("endpoint", {})
        private_id, public_id = _split_network_name(compute.network_name)
        keep_private = endpoint.get("private_ip") is not False
        nets: list[Network] = []
        if not compute.public or keep_private:
            nets.append(self.private_net(private_id))
        if compute.public:  # one per public Compute: outports differ per VM
            nets.append(self.add(self.new_name(PUBLIC_NET), True, public_id))
        compute.interfaces = [NetworkInterface(n.name, i) for i, n in enumerate(nets)]
        _outports(nets[-1], compute.ports)
        first = compute.interfaces[0]
        first.dns_name = _str(endpoint.get("dns_name"))
        first.additional_ip = _str(endpoint.get("additional_ip"))
        extra = endpoint.get("additional_dns_names")
        if isinstance(extra, list):
            compute.interfaces[-1].additional_dns_names = [str(x) for x in extra]

    def explicit(self, compute: Compute, ports: list[tuple[NodeTemplate, str]]) -> None:
        interfaces: list[NetworkInterface] = []
        for port, net in ports:
            props = port.section("properties")
            order = props.get("order", 0)
            extra = props.get("additional_dns_names")
            interfaces.append(
                NetworkInterface(
                    net,
                    order if isinstance(order, int) and not isinstance(order, bool) else 0,
                    _str(props.get("ip_address")),
                    _str(props.get("dns_name")),
                    [str(x) for x in extra] if isinstance(extra, list) else [],
                    _str(props.get("additional_ip")),
                )
            )
        compute.interfaces = sorted(interfaces, key=lambda i: i.order)
        linked = [self.template.networks[i.network] for i in compute.interfaces]
        target = next((n for n in linked if n.public), linked[0])
        _outports(target, compute.ports)


def _outports(net: Network, ports: list[PortSpec]) -> None:
    net.outports.extend(p for p in ports if p not in net.outports)


def _cloud(image: str | None) -> str:
    parsed = urlparse(image or "")
    return f"{parsed.scheme}://{parsed.netloc}" if parsed.netloc else ""


def _split_by_cloud(template: Template) -> None:
    """A private network shared by images on different clouds is cloned per cloud (IM)."""
    for net in [n for n in template.networks.values() if n.implicit and not n.public]:
        users = [
            c
            for c in template.computes.values()
            if any(i.network == net.name for i in c.interfaces)
        ]
        clouds = list(dict.fromkeys(_cloud(c.image) for c in users))
        for cloud in clouds[1:]:
            clone_name = f"{net.name}.{urlparse(cloud).netloc or 'local'}"
            template.networks[clone_name] = Network(
                clone_name, provider_id=net.provider_id, implicit=True
            )
            for compute in users:
                if _cloud(compute.image) == cloud:
                    for iface in compute.interfaces:
                        if iface.network == net.name:
                            iface.network = clone_name


def build_networks(ctx: Context, template: Template) -> None:
    """Template.networks (explicit first, as IM processes them) and each Compute's interfaces."""
    builder = _Builder(ctx, template)
    ports = _ports_of(ctx, template)
    for compute in template.computes.values():
        if compute.name in ports:
            builder.explicit(compute, ports[compute.name])
        else:
            builder.implicit(compute)
    _split_by_cloud(template)
