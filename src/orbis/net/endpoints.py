"""The address rule for cloud endpoints a user names in an auth line (an OpenStack auth URL, a
Kubernetes API server): the server contacts them for that user, so the rule of server-side
fetches holds for them too (addresses.py): loopback, private, link-local (the metadata service
169.254.169.254), unspecified, multicast and reserved addresses are refused unless
ORBIS_FETCH_ALLOW lists them. Checked on every address the host name resolves to, before any
provider for the line is built (so before any connection). The operator's own sites
(ORBIS_SITES) are trusted and not checked. The endpoints a user's cloud hands back (an
OpenStack Keystone catalogue) get the same rule (`url_refusal`) before the SDK uses them. The
cloud SDKs resolve the name again when they connect, so for a user's site their connections are
checked again when made (net/guarded.py): a DNS answer rebound in between is refused.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

from orbis.net.addresses import IPAddress, allow_list_from_env, check_address

ENDPOINT_FIELDS = ("host",)  # the auth-line fields that name an endpoint the server contacts
DEFAULT_SCHEMES = {"kubernetes": "https"}  # else http, as IM reads an OpenStack host


def endpoint_refusal(line: Mapping[str, str], kind: str) -> str | None:
    """None when the server may contact every endpoint of a user's auth line; else why not
    (naming the rule and ORBIS_FETCH_ALLOW)."""
    for field in ENDPOINT_FIELDS:
        value = (line.get(field) or "").strip()
        if not value:
            continue
        scheme = DEFAULT_SCHEMES.get(kind.lower(), "http")
        refusal = url_refusal(value if "://" in value else f"{scheme}://{value}", field)
        if refusal is not None:
            return f"{refusal}: a cloud endpoint in a user's auth line must be a public address"
    return None


def url_refusal(url: str, what: str) -> str | None:
    """None when the server may contact `url` for a user; else why not (`what` names it)."""
    allow = allow_list_from_env()
    parts = urlsplit(url)
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        return f"the {what} '{url}' has a bad port"
    if not host:
        return f"the {what} '{url}' names no host"
    # a name that does not resolve now is left to the provider, whose connection fails
    for ip in _resolve(host, port):  # every one: a mixed DNS answer must not slip one through
        refusal = check_address(host, ip, port, allow)
        if refusal is not None:
            return f"{what} {refusal}"
    return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    found: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])  # drop an IPv6 zone
        if ip not in found:
            found.append(ip)
    return found
