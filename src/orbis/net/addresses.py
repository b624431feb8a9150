"""Which addresses the server may contact for a user: public ones, plus the operator's list.

A template names URLs; without a rule a user could make the server read its own loopback
services, the cloud metadata service (169.254.169.254) or the operator's private network
(SSRF). The rule is checked on the address a connection is actually made to, never on the
name alone, so a DNS answer cannot change it between the check and the connect.

ORBIS_FETCH_ALLOW (comma-separated) lists exceptions, e.g. a package mirror on the private
network: `10.1.2.3/32`, `10.0.0.0/8:8080`, `[fd00::1]:443`, `mirror.example:443`, `localhost`.
A network entry matches by the connected address, a name entry by the URL's host name; a
`:port` suffix limits the entry to that port.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

ALLOW_SETTING = "ORBIS_FETCH_ALLOW"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
METADATA = ipaddress.ip_address("169.254.169.254")


def refusal_reason(ip: IPAddress) -> str | None:
    """Why `ip` is not a public address ("a loopback address"...), or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip == METADATA:
        return "the cloud metadata service (link-local)"
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "not a public address"),  # CGNAT 100.64/10, documentation nets...
    )
    return next((why for hit, why in checks if hit), None)


@dataclass(frozen=True)
class AllowEntry:
    network: IPNetwork | None  # matches the connected address
    host: str | None  # or the URL's host name (lower case)
    port: int | None  # None: any port

    def matches(self, host: str, ip: IPAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return ip in self.network
        return self.host == host.lower().rstrip(".")


class AllowListError(ValueError):
    """ORBIS_FETCH_ALLOW holds an entry that is neither a network nor a host[:port]."""


def parse_allow_list(text: str) -> tuple[AllowEntry, ...]:
    """The entries of an ORBIS_FETCH_ALLOW value (see the module docstring)."""
    return tuple(_entry(item.strip()) for item in text.split(",") if item.strip())


def _entry(item: str) -> AllowEntry:
    try:
        return AllowEntry(ipaddress.ip_network(item, strict=False), None, None)
    except ValueError:
        pass
    name, port = item, None
    head, sep, tail = item.rpartition(":")
    if sep and tail.isdigit() and (not head.count(":") or head.startswith("[")):
        name, port = head, int(tail)
    name = name.removeprefix("[").removesuffix("]")
    try:
        return AllowEntry(ipaddress.ip_network(name, strict=False), None, port)
    except ValueError:
        pass
    if not name or any(c in name for c in "/@ []"):
        raise AllowListError(f"{ALLOW_SETTING}: '{item}' is not a network, address or host[:port]")
    return AllowEntry(None, name.lower().rstrip("."), port)


def allow_list_from_env() -> tuple[AllowEntry, ...]:
    return parse_allow_list(os.environ.get(ALLOW_SETTING, ""))


def check_address(host: str, ip: IPAddress, port: int, allow: tuple[AllowEntry, ...]) -> str | None:
    """None when the server may connect to `ip` for `host`; else the refusal, naming the rule."""
    why = refusal_reason(ip)
    if why is None or any(entry.matches(host, ip, port) for entry in allow):
        return None
    named = ip if host == str(ip) else f"{host} ({ip})"
    return f"refused: {named} is {why} ({ALLOW_SETTING})"
