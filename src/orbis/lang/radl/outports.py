"""The `outports` string of a network (reference §1.6) ↔ model PortSpecs."""

from __future__ import annotations

import re

from orbis.model.infrastructure import PortSpec

_SPEC = re.compile(r"(\d+)(?::(\d+))?(?:/(tcp|udp|icmp))?", re.I)
_CIDR = re.compile(r"[0-9A-Fa-f.:]+/\d+")


def _port(text: str, problems: list[str]) -> int:
    value = int(text)
    if value > 65535:
        problems.append(f"port {value} is out of range (0-65535)")
    return value


def parse_outports(text: str) -> tuple[list[PortSpec], list[str]]:
    """(ports, problems) of an outports string such as '22,80-8080,9000:9010/udp'."""
    ports: list[PortSpec] = []
    problems: list[str] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            problems.append("empty entry")
            continue
        cidr = None
        m = re.match(r"([0-9A-Fa-f.:]+/\d+)-(.*)$", entry)
        if m and _CIDR.fullmatch(m.group(1)):
            cidr, entry = m.group(1), m.group(2)
        sides = entry.split("-")
        specs = [_SPEC.fullmatch(side) for side in sides]
        if len(sides) > 2 or not all(specs):
            problems.append(f"cannot read '{raw.strip()}'")
            continue
        first = specs[0]
        assert first is not None
        port, end, proto = first.group(1), first.group(2), first.group(3)
        protocol = (proto or "tcp").lower()
        if len(specs) == 2:
            second = specs[1]
            assert second is not None
            if end or second.group(2):
                problems.append(f"'{raw.strip()}': a range and a mapping cannot be combined")
                continue
            other = second.group(3)
            if proto and other and proto.lower() != other.lower():
                problems.append(f"'{raw.strip()}': the two sides name different protocols")
                continue
            protocol = (proto or other or "tcp").lower()
            public, local = _port(port, problems), _port(second.group(1), problems)
            target = None if local == public else local
            ports.append(PortSpec(public, protocol, target, cidr))
            continue
        low = _port(port, problems)
        high = _port(end, problems) if end else None
        if high is not None and high < low:
            problems.append(f"'{raw.strip()}': the range ends before it starts")
        ports.append(PortSpec(low, protocol, None, cidr, high))
    return ports, problems


def format_outports(ports: list[PortSpec]) -> str:
    parts = []
    for p in ports:
        proto = "" if p.protocol == "tcp" else f"/{p.protocol}"
        cidr = f"{p.remote_cidr}-" if p.remote_cidr else ""
        if p.range_end is not None:
            parts.append(f"{cidr}{p.port}:{p.range_end}{proto}")
        elif p.target is not None and p.target != p.port:
            parts.append(f"{cidr}{p.port}{proto}-{p.target}{proto}")
        else:
            parts.append(f"{cidr}{p.port}{proto}")
    return ",".join(parts)
