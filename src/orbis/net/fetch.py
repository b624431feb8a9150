"""`fetch(url)`: the body of an http(s) URL, downloaded for a user under the server's rules.

Every download the server makes because a template asked (recipes, artifacts, imports) goes
through here, so the rules hold in one place:
- only http and https;
- the host is resolved here and the connection is made to that very address (the URL is
  rewritten to the IP; Host header and TLS SNI/certificate check keep the name), so DNS
  rebinding cannot swap in another address after the check; every resolved address must pass
  `orbis.net.addresses` (no loopback, private, link-local/metadata... unless ORBIS_FETCH_ALLOW);
- redirects are followed by hand, each hop checked the same way, at most
  ORBIS_FETCH_MAX_REDIRECTS (default 5);
- the body is streamed and reading stops as soon as it passes ORBIS_FETCH_MAX_BYTES
  (default 5 MiB); the whole download has ORBIS_FETCH_TIME_LIMIT seconds (default 30) and
  each read ORBIS_ARTIFACT_TIMEOUT (default 10);
- no proxy from the environment (it would connect on our behalf, past the address check).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from orbis.net.addresses import AllowEntry, IPAddress, allow_list_from_env, check_address

MAX_BYTES_SETTING = "ORBIS_FETCH_MAX_BYTES"
TIME_LIMIT_SETTING = "ORBIS_FETCH_TIME_LIMIT"
READ_TIMEOUT_SETTING = "ORBIS_ARTIFACT_TIMEOUT"
REDIRECTS_SETTING = "ORBIS_FETCH_MAX_REDIRECTS"
_REDIRECTS = (301, 302, 303, 307, 308)


class FetchError(Exception):
    """A download failed: `url` (the hop that failed) and `reason` (the cause or the rule)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class FetchRefused(FetchError):
    """A rule forbids the download (scheme, address, redirect count, encoding)."""


class FetchTooLarge(FetchError):
    """The body passed the size cap; reading stopped there."""


class FetchTimeout(FetchError):
    """The download passed the total time cap or a read timed out."""


class FetchFailed(FetchError):
    """The server could not be reached or did not answer 200."""


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int = 5 * 1024 * 1024
    time_limit: float = 30.0  # seconds for the whole download, redirects included
    read_timeout: float = 10.0  # seconds for the connect and for each read
    max_redirects: int = 5
    allow: tuple[AllowEntry, ...] = field(default=())

    @classmethod
    def from_env(cls) -> FetchPolicy:
        env = os.environ.get
        return cls(
            max_bytes=int(env(MAX_BYTES_SETTING) or cls.max_bytes),
            time_limit=float(env(TIME_LIMIT_SETTING) or cls.time_limit),
            read_timeout=float(env(READ_TIMEOUT_SETTING) or cls.read_timeout),
            max_redirects=int(env(REDIRECTS_SETTING) or cls.max_redirects),
            allow=allow_list_from_env(),
        )


def fetch(url: str, policy: FetchPolicy | None = None) -> bytes:
    """The body of `url` (200 only), or a FetchError subclass naming the rule or cause."""
    policy = policy or FetchPolicy.from_env()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(fetch_async(url, policy))
    with ThreadPoolExecutor(1) as pool:  # called on an event loop: run on a private one
        return pool.submit(asyncio.run, fetch_async(url, policy)).result()


async def fetch_async(url: str, policy: FetchPolicy) -> bytes:
    """`fetch` for async callers."""
    try:
        async with asyncio.timeout(policy.time_limit):
            return await _follow(url, policy)
    except TimeoutError:
        raise FetchTimeout(
            url, f"not downloaded within {policy.time_limit:g} s ({TIME_LIMIT_SETTING})"
        ) from None


@dataclass(frozen=True)
class _Pinned:
    url: str  # the URL with the checked IP in place of the host name
    host_header: str
    sni: str | None


async def _follow(url: str, policy: FetchPolicy) -> bytes:
    timeout = httpx.Timeout(policy.read_timeout)
    client = httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=timeout)
    async with client:
        current = url
        for _hop in range(policy.max_redirects + 1):
            body, location = await _get(client, current, await _pin(current, policy), policy)
            if location is None:
                return body
            current = urljoin(current, location)
    raise FetchRefused(url, f"more than {policy.max_redirects} redirects ({REDIRECTS_SETTING})")


async def _get(
    client: httpx.AsyncClient, url: str, pinned: list[_Pinned], policy: FetchPolicy
) -> tuple[bytes, str | None]:
    """(body, None) or (b"", redirect location); the checked addresses are tried in order."""
    for attempt, target in enumerate(pinned, start=1):
        try:
            async with client.stream(
                "GET", target.url,
                headers={"Host": target.host_header, "Accept-Encoding": "identity"},
                extensions={"sni_hostname": target.sni} if target.sni else {},
            ) as response:  # fmt: skip
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    return b"", location
                if response.status_code != 200:
                    raise FetchFailed(url, f"HTTP {response.status_code}")
                return await _read_capped(response, url, policy.max_bytes), None
        except httpx.ConnectError as exc:
            if attempt == len(pinned):
                raise FetchFailed(url, str(exc) or "connection refused") from None
        except httpx.TimeoutException:
            reason = f"no answer within {policy.read_timeout:g} s ({READ_TIMEOUT_SETTING})"
            raise FetchTimeout(url, reason) from None
        except httpx.HTTPError as exc:
            raise FetchFailed(url, str(exc) or type(exc).__name__) from None
    raise FetchFailed(url, "no address to connect to")


async def _pin(url: str, policy: FetchPolicy) -> list[_Pinned]:
    """Resolve the URL's host and check every address; the connection goes to these only."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRefused(url, f"refused: only http(s) URLs are downloaded, not '{scheme}:'")
    host = parts.hostname
    if not host:
        raise FetchRefused(url, "refused: no host name")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise FetchRefused(url, "refused: bad port") from None
    addresses = await checked_addresses(host, port, policy.allow, url)
    userinfo = parts.netloc.rpartition("@")[0]
    shown_host = f"[{host}]" if ":" in host else host
    host_header = shown_host if parts.port is None else f"{shown_host}:{port}"
    out = []
    for ip in addresses:
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        netloc = f"{userinfo}@{literal}:{port}" if userinfo else f"{literal}:{port}"
        pinned_url = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
        sni = host if scheme == "https" and host != str(ip) else None
        out.append(_Pinned(pinned_url, host_header, sni))
    return out


async def checked_addresses(host: str, port: int, allow: tuple[AllowEntry, ...],
                            url: str) -> list[IPAddress]:  # fmt: skip
    """Every address `host` resolves to, each passing the address rule; FetchRefused naming
    the rule if one does not (a mixed DNS answer must not slip one through), FetchFailed if
    the name does not resolve. Connect to these, never to the name."""
    addresses = await _resolve(host, port, url)
    for ip in addresses:
        refusal = check_address(host, ip, port, allow)
        if refusal is not None:
            raise FetchRefused(url, refusal)
    return addresses


async def _resolve(host: str, port: int, url: str) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise FetchFailed(url, f"cannot resolve {host}: {exc.strerror or exc}") from None
    found: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])  # drop an IPv6 zone
        if ip not in found:
            found.append(ip)
    if not found:
        raise FetchFailed(url, f"{host} has no address")
    return found


async def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):  # a compressed body could expand past any cap
        raise FetchRefused(url, f"refused: compressed answer (Content-Encoding: {encoding})")
    too_large = FetchTooLarge(url, f"larger than {max_bytes} bytes ({MAX_BYTES_SETTING})")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:  # refused before reading a byte
        raise FetchTooLarge(
            url, f"declares {declared} bytes, more than {max_bytes} ({MAX_BYTES_SETTING})"
        )
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > max_bytes:
            raise too_large  # leaving the stream closes the connection unread
    return bytes(body)
