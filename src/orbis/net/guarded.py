"""Connections to a user's cloud endpoints that apply the address rule at connect time.

net/endpoints.py checks a user's endpoint before its provider is built, but the cloud SDKs
resolve the name again when they connect: a DNS answer that changes in between (rebinding)
would slip past. So the SDKs' HTTP stacks for a user's site are given connection classes that
resolve here, check every address (`orbis.net.addresses`: no loopback, private, link-local or
metadata address unless ORBIS_FETCH_ALLOW lists it) and connect to a checked address only;
TLS still checks the certificate for the name. Every connection is checked, so redirects and
the endpoints a cloud hands back (a Keystone catalogue) are too. No proxy from the environment:
it would connect on our behalf, past the check.

- requests / urllib3 (keystoneauth and openstacksdk, the Kubernetes client):
  `guarded_requests_session()`, `guard_pool_manager(pool_manager)`;
- httpx (the OSCAR client): `guarded_httpx_transport(verify)`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

import httpcore
import httpx
import requests
import requests.adapters
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as u3_connection

from orbis.net.addresses import ALLOW_SETTING, IPAddress, allow_list_from_env, check_address


class AddressRefused(OSError):
    """The address rule refuses every connection to this host now; the text names the rule."""


def checked_addresses(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to now, each passing the rule (AddressRefused if one
    does not: a mixed answer must not slip one through); socket.gaierror if it resolves not."""
    try:
        found: list[IPAddress] = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        found = []
        for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if ip not in found:
                found.append(ip)
    allow = allow_list_from_env()
    for ip in found:
        refusal = check_address(host, ip, port, allow)
        if refusal is not None:
            raise AddressRefused(refusal)
    return found


def refusal_in(text: str) -> str | None:
    """The address rule's refusal quoted in an SDK's error text (wrapped by its layers)."""
    found = re.search(r"refused: .*?\(" + ALLOW_SETTING + r"\)", text)
    return found.group(0) if found else None


# -- urllib3 (requests, keystoneauth, openstacksdk, the Kubernetes client) ----------------------
class GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        try:
            addresses = checked_addresses(self._dns_host, self.port)
        except AddressRefused as exc:
            raise NewConnectionError(self, str(exc)) from exc
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        last: OSError | None = None
        for ip in addresses:  # the checked addresses, never the name again
            try:
                return u3_connection.create_connection(
                    (str(ip), self.port), self.timeout, source_address=self.source_address,
                    socket_options=self.socket_options,
                )  # fmt: skip
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from exc
            except OSError as exc:
                last = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {last}")


class GuardedHTTPSConnection(GuardedHTTPConnection, HTTPSConnection):
    """TLS on top of the guarded socket: SNI and the certificate check keep the name."""


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


def guard_pool_manager(manager: urllib3.PoolManager) -> urllib3.PoolManager:
    """Make `manager` open only guarded connections (pools made from now on)."""
    manager.pool_classes_by_scheme = {"http": GuardedHTTPConnectionPool,
                                      "https": GuardedHTTPSConnectionPool}  # fmt: skip
    manager.clear()
    return manager


class _GuardedAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        guard_pool_manager(self.poolmanager)


def guarded_requests_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy (nor .netrc) from the server's environment
    for prefix in ("http://", "https://"):
        session.mount(prefix, _GuardedAdapter())
    return session


# -- httpx (the OSCAR client) ------------------------------------------------------------------
class _GuardedBackend(httpcore.SyncBackend):
    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:  # fmt: skip
        try:
            addresses = checked_addresses(host, port)
        except (AddressRefused, socket.gaierror) as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        last: Exception | None = None
        for ip in addresses:
            try:
                return super().connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise httpcore.ConnectError(str(last))


def guarded_httpx_transport(verify: bool = True) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(verify=verify, trust_env=False)
    # httpx takes no network backend: its pool (httpcore's) does; TLS uses the URL's name
    transport._pool._network_backend = _GuardedBackend()
    return transport
