"""Compute nodes → model.Compute (capabilities host / os / endpoint / scalable)."""

from __future__ import annotations

from typing import Any

from orbis.lang.tosca.context import Context, NodeTemplate
from orbis.lang.tosca.datatypes import im_size_to_bytes, size_to_bytes
from orbis.lang.yaml_positions import PMap, child_pos
from orbis.model.infrastructure import Compute, Credentials, Function, PortSpec, Position

_OPERATORS = ("equal", "greater_than", "greater_or_equal", "less_than", "less_or_equal")


class ComputeMapper:
    def __init__(self, ctx: Context, node: NodeTemplate, caps: dict[str, dict[str, Any]]) -> None:
        self.ctx, self.node, self.caps = ctx, node, caps

    def pos(self, cap: str, prop: str) -> Position | None:
        """Where a capability property was written (the node itself when it is a default)."""
        given = self.node.section("capabilities").get(cap)
        props = given.get("properties") if isinstance(given, dict) else None
        return (
            child_pos(props, prop, self.node.position)
            if isinstance(props, dict)
            else self.node.position
        )

    def value(self, cap: str, prop: str) -> Any:
        value = self.caps.get(cap, {}).get(prop)
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _OPERATORS:
            value = next(iter(value.values()))  # {greater_or_equal: 2}: IM's operator form
        if isinstance(value, Function):
            self.ctx.problems.add(self.pos(cap, prop), f"{cap}.{prop} must be known at load time")
            return None
        return value

    def size(self, cap: str, prop: str) -> int | None:
        value = self.value(cap, prop)
        if value is None:
            return None
        return im_size_to_bytes(value)  # a bad size was reported by the property type check

    def text(self, cap: str, prop: str) -> str | None:
        value = self.value(cap, prop)
        given = self.node.section("capabilities").get(cap)
        props = given.get("properties") if isinstance(given, dict) else None
        if isinstance(value, float) and isinstance(props, PMap) and prop in props.float_texts:
            return props.float_texts[prop]  # version: 22.10 must not become "22.1"
        return None if value is None else str(value)

    def count(self) -> int:
        """IM: the first set of count, default_instances, min_instances (defaults included)."""
        given = self.node.section("capabilities").get("scalable")
        given = given.get("properties") if isinstance(given, dict) else None
        given = given if isinstance(given, dict) else {}
        for prop in ("count", "default_instances", "min_instances"):
            value = self.value("scalable", prop)
            if value is None:
                continue
            ignored = [
                p for p in ("default_instances", "min_instances") if p in given and p != prop
            ]
            if prop not in given and ignored:  # IM quirk: indigo's count default (1) wins
                where = self.pos("scalable", ignored[0])
                self.ctx.problems.warn(where, f"scalable.{ignored[0]} is ignored: set 'count'")
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.ctx.problems.add(
                    self.pos("scalable", prop), f"scalable.{prop} must be an integer >= 0"
                )
                return 1
            if prop == "default_instances":
                low, high = (
                    self.value("scalable", "min_instances"),
                    self.value("scalable", "max_instances"),
                )
                if isinstance(low, int) and isinstance(high, int) and not low <= value <= high:
                    self.ctx.problems.add(
                        self.pos("scalable", prop),
                        f"scalable.default_instances {value} is not between min_instances {low} "
                        f"and max_instances {high}",
                    )
            return value
        return 1

    def port(self, value: Any, pos: Position | None, what: str) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            self.ctx.problems.add(pos, f"{what}: {value!r} is not a port number (0-65535)")
            return None
        return value

    def ports(self) -> list[PortSpec]:
        raw_ports = self.caps.get("endpoint", {}).get("ports")
        pos = self.pos("endpoint", "ports")
        out: list[PortSpec] = []
        if isinstance(raw_ports, dict):
            items = list(raw_ports.items())
        elif isinstance(raw_ports, list):  # also seen: a list of PortSpecs
            items = [(str(i), p) for i, p in enumerate(raw_ports)]
        else:
            items = []
        for name, spec in items:
            what = f"endpoint port '{name}'"
            if not isinstance(spec, dict):
                self.ctx.problems.add(pos, f"{what} must be a mapping (protocol, source, target)")
                continue
            protocol = str(spec.get("protocol") or "tcp").lower()
            if protocol not in ("tcp", "udp", "icmp"):
                self.ctx.problems.add(
                    pos, f"{what}: unknown protocol '{protocol}'", "tcp, udp or icmp"
                )
            span = spec.get("source_range")
            if isinstance(span, list) and len(span) == 2:
                low, high = (self.port(p, pos, what) for p in span)
                if low is not None and high is not None:
                    out.append(PortSpec(low, protocol, None, spec.get("remote_cidr"), high))
                continue
            source = self.port(spec.get("source"), pos, what)
            target = spec.get("target")
            target = None if target is None else self.port(target, pos, what)
            if source is not None:
                target = None if target == source else target
                out.append(PortSpec(source, protocol, target, spec.get("remote_cidr")))
        single = self.value("endpoint", "port")
        if single is not None and (
            port := self.port(single, self.pos("endpoint", "port"), "endpoint port")
        ):
            out.append(PortSpec(port, str(self.value("endpoint", "protocol") or "tcp").lower()))
        return out


def is_public(network_name: Any) -> bool:
    """PUBLIC, <net>.PUBLIC, or OpenStack's '<net>,<floating pool>' all give a public IP."""
    name = str(network_name or "")
    return name.upper() == "PUBLIC" or name.upper().endswith(".PUBLIC") or "," in name


def map_compute(
    ctx: Context, node: NodeTemplate, caps: dict[str, dict[str, Any]], properties: dict[str, Any]
) -> Compute:
    m = ComputeMapper(ctx, node, caps)
    cpus = m.value("host", "num_cpus")
    if cpus is not None and (isinstance(cpus, bool) or not isinstance(cpus, int | float)):
        ctx.problems.add(m.pos("host", "num_cpus"), f"host.num_cpus: {cpus!r} is not a number")
        cpus = None
    network_name = m.text("endpoint", "network_name")
    removal = m.value("scalable", "removal_list") or []
    if not isinstance(removal, list):
        ctx.problems.add(m.pos("scalable", "removal_list"), "scalable.removal_list must be a list")
        removal = []
    compute = Compute(
        name=node.name,
        type=node.type,
        count=m.count(),
        num_cpus=None if cpus is None else float(cpus),
        mem_size=m.size("host", "mem_size"),
        disk_size=m.size("host", "disk_size"),
        image=m.text("os", "image"),
        os_type=m.text("os", "type"),
        os_distribution=m.text("os", "distribution"),
        os_version=m.text("os", "version"),
        public=is_public(network_name) or properties.get("public_ip") is True,
        network_name=network_name,
        ports=m.ports(),
        removal_list=[str(r) for r in removal],
        properties=properties,
        capabilities=caps,
        position=node.position,
    )
    _extras(ctx, node, m, compute, properties)
    return compute


def _int(m: ComputeMapper, cap: str, prop: str) -> int | None:
    value = m.value(cap, prop)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        m.ctx.problems.add(m.pos(cap, prop), f"{cap}.{prop}: {value!r} is not an integer")
        return None
    return value


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return bool(value)


def _ghz(value: Any) -> Any:
    """'2500 MHz' / '2.5 GHz' → 2.5; other values as written."""
    units = {"hz": 1e-9, "khz": 1e-6, "mhz": 1e-3, "ghz": 1.0}
    parts = str(value).split()
    if len(parts) == 2 and parts[1].lower() in units:
        try:
            return float(parts[0]) * units[parts[1].lower()]
        except ValueError:
            return value
    return value


def _extras(
    ctx: Context, node: NodeTemplate, m: ComputeMapper, compute: Compute, props: dict[str, Any]
) -> None:
    """The rest of IM's machine description: GPUs, SGX, spot, credentials, tags, DNS..."""
    compute.instance_type = m.text("host", "instance_type")
    compute.cpu_arch = m.text("os", "architecture")
    compute.num_gpus = _int(m, "host", "num_gpus")
    compute.gpu_vendor = m.text("host", "gpu_vendor")
    compute.gpu_model = m.text("host", "gpu_model")
    compute.spot = _flag(m.value("host", "preemtible_instance"))  # (sic) IM's spelling
    compute.min_instances = _int(m, "scalable", "min_instances")
    compute.max_instances = _int(m, "scalable", "max_instances")
    features: dict[str, Any] = {}
    if (sgx := _flag(m.value("host", "sgx"))) is not None:
        features["cpu.sgx"] = sgx
    if (epc := m.value("host", "sgx_epc_size")) is not None:
        features["cpu.sgx.epc_size"] = size_to_bytes(epc) if isinstance(epc, str) else epc
    if (freq := m.value("host", "cpu_frequency")) is not None:
        features["cpu.performance"] = _ghz(freq)  # RADL: GHz
    if (disk_type := m.text("host", "disk_type")) is not None:
        features["disk.0.type"] = disk_type
    if (tls := _flag(m.value("endpoint", "tls"))) is not None and tls:
        features["dns.tls"] = True
    compute.features = features
    compute.credentials = _credentials(ctx, m.value("os", "credential"), m.pos("os", "credential"))
    tags = props.get("tags")
    if tags is not None and not isinstance(tags, dict):
        pos = child_pos(node.section("properties"), "tags", node.position)
        ctx.problems.add(pos, "property 'tags' must be a map of tag: value", "e.g. {env: prod}")
    elif tags:
        compute.tags = {str(k): str(v) for k, v in tags.items()}
    name = props.get("instance_name")
    compute.instance_name = str(name) if name not in (None, "") else None


def _credentials(ctx: Context, value: Any, pos: Position | None) -> Credentials | None:
    """os.credential {user, token, token_type} → Credentials (token_type defaults to password)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value.get("user"):
        ctx.problems.add(pos, "os.credential needs a 'user'", "{user: ..., token: ...}")
        return None
    token, kind = value.get("token"), str(value.get("token_type") or "password")
    if kind not in ("password", "private_key", "public_key"):
        ctx.problems.add(
            pos, f"os.credential: unknown token_type '{kind}'", "password, private_key, public_key"
        )
        return None
    token = None if token is None else str(token)
    return Credentials(
        str(value["user"]),
        password=token if kind == "password" else None,
        private_key=token if kind == "private_key" else None,
        public_key=token if kind == "public_key" else None,
    )
