"""The guarded download (orbis.net.fetch) against real HTTP servers on 127.0.0.1.

The servers are loopback addresses, which the rule refuses: "allowed" tests list the first
server's port in the allow list, "refused" tests do not. Connections are observed with a
socket audit hook (every connect the process attempts), not by patching our code.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator

import pytest

from orbis.net.addresses import check_address, parse_allow_list, refusal_reason
from orbis.net.fetch import (
    FetchFailed,
    FetchPolicy,
    FetchRefused,
    FetchTimeout,
    FetchTooLarge,
    fetch,
)
from orbis.testing.hostile_http import GIB, HostileServer, RebindingResolver, hostile_server

CONNECTS: list[str] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect":
        address = args[1]
        CONNECTS.append(str(address[0]) if isinstance(address, tuple) else str(address))


sys.addaudithook(_audit)


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with hostile_server() as s:
        s.files["play.yml"] = "- hosts: all\n"
        yield s


@pytest.fixture
def other() -> Iterator[HostileServer]:
    with hostile_server() as s:
        s.files["secret"] = "internal only"
        yield s


def allowing(server: HostileServer, **kw: float) -> FetchPolicy:
    """Only `server`'s port on 127.0.0.1 is allowed (another loopback port is not)."""
    return FetchPolicy(allow=parse_allow_list(f"127.0.0.1:{server.port}"), **kw)  # type: ignore[arg-type]


def test_allowed_server_is_read(server: HostileServer) -> None:
    assert fetch(f"{server.url}/files/play.yml", allowing(server)) == b"- hosts: all\n"


def test_loopback_refused_without_the_allow_list(server: HostileServer) -> None:
    with pytest.raises(
        FetchRefused, match=r"127\.0\.0\.1 is a loopback address \(ORBIS_FETCH_ALLOW\)"
    ):
        fetch(f"{server.url}/files/play.yml", FetchPolicy())
    assert server.hits == []


def test_a_name_resolving_to_loopback_is_refused(server: HostileServer) -> None:
    with pytest.raises(FetchRefused, match=r"localhost \(.+\) is a loopback address"):
        fetch(f"http://localhost:{server.port}/files/play.yml", FetchPolicy())
    assert server.hits == []


def test_allowed_name_connects_to_the_checked_address_with_its_host_header(
    server: HostileServer,
) -> None:
    policy = FetchPolicy(allow=parse_allow_list("localhost"))
    CONNECTS.clear()
    assert fetch(f"http://localhost:{server.port}/files/play.yml", policy) == b"- hosts: all\n"
    assert server.hits == [("/files/play.yml", f"localhost:{server.port}")]
    assert CONNECTS and all(c in ("127.0.0.1", "::1") for c in CONNECTS)  # an IP, not a name


def test_redirect_to_another_loopback_port_refused_at_the_hop(
    server: HostileServer, other: HostileServer
) -> None:
    target = f"{other.url}/files/secret"
    with pytest.raises(FetchRefused, match=r"127\.0\.0\.1 is a loopback address") as caught:
        fetch(f"{server.url}/redirect?to={target}", allowing(server))
    assert caught.value.url == target  # the hop is named
    assert [p for p, _ in server.hits] == ["/redirect"]
    assert other.hits == []  # never contacted


def test_redirect_to_the_metadata_service_refused_without_connecting(
    server: HostileServer,
) -> None:
    CONNECTS.clear()
    with pytest.raises(FetchRefused, match=r"169\.254\.169\.254 is the cloud metadata service"):
        fetch(
            f"{server.url}/redirect?to=http://169.254.169.254/latest/meta-data/", allowing(server)
        )
    assert [p for p, _ in server.hits] == ["/redirect"]
    assert "169.254.169.254" not in CONNECTS and "127.0.0.1" in CONNECTS


def test_redirect_chain_is_capped(server: HostileServer) -> None:
    url = f"{server.url}/files/play.yml"
    for _ in range(3):
        url = f"{server.url}/redirect?to={url.replace('&', '%26').replace('?', '%3F')}"
    with pytest.raises(FetchRefused, match=r"more than 2 redirects \(ORBIS_FETCH_MAX_REDIRECTS\)"):
        fetch(url, allowing(server, max_redirects=2))
    assert fetch(url, allowing(server, max_redirects=3)) == b"- hosts: all\n"


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org/x", "gopher://127.0.0.1/"]
)
def test_other_schemes_refused(url: str) -> None:
    with pytest.raises(FetchRefused, match=r"only http\(s\) URLs"):
        fetch(url, FetchPolicy(allow=parse_allow_list("0.0.0.0/0")))


def test_one_gigabyte_body_stops_just_past_the_cap(server: HostileServer) -> None:
    started = time.monotonic()
    with pytest.raises(FetchTooLarge, match=r"larger than 5242880 bytes \(ORBIS_FETCH_MAX_BYTES\)"):
        fetch(f"{server.url}/big?bytes={GIB}", allowing(server))
    time.sleep(0.3)  # let the server notice the hang-up
    assert server.bytes_sent < 64 * 1024 * 1024, server.bytes_sent  # far from 1 GB
    assert time.monotonic() - started < 5


def test_declared_length_over_the_cap_refused_before_reading(server: HostileServer) -> None:
    with pytest.raises(
        FetchTooLarge,
        match=r"declares 1073741824 bytes, more than 5242880 \(ORBIS_FETCH_MAX_BYTES\)",
    ):
        fetch(f"{server.url}/declared-big", allowing(server))
    time.sleep(0.3)
    assert server.bytes_sent < 64 * 1024 * 1024


def test_a_body_under_the_cap_is_read_whole(server: HostileServer) -> None:
    body = fetch(f"{server.url}/big?bytes=300000", allowing(server))
    assert len(body) == 300000


def test_slow_drip_hits_the_total_time_cap(server: HostileServer) -> None:
    started = time.monotonic()
    with pytest.raises(FetchTimeout, match=r"within 1\.5 s \(ORBIS_FETCH_TIME_LIMIT\)"):
        fetch(f"{server.url}/drip", allowing(server, time_limit=1.5, read_timeout=1.0))
    assert time.monotonic() - started < 3


def test_http_errors_name_the_status(server: HostileServer) -> None:
    with pytest.raises(FetchFailed, match="HTTP 404"):
        fetch(f"{server.url}/files/nothing", allowing(server))


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd00::1", "a private address"),
        ("169.254.169.254", "the cloud metadata service (link-local)"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("100.64.0.1", "not a public address"),
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
    ],
)
def test_address_rule(address: str, reason: str | None) -> None:
    import ipaddress

    assert refusal_reason(ipaddress.ip_address(address)) == reason


def test_allow_list_entries_match_by_network_name_and_port() -> None:
    import ipaddress

    allow = parse_allow_list("10.1.2.3/32, mirror.example:443, [fd00::1]:8080")
    ten = ipaddress.ip_address("10.1.2.3")
    assert check_address("10.1.2.3", ten, 80, allow) is None
    assert check_address("x", ipaddress.ip_address("10.1.2.4"), 80, allow) is not None
    assert check_address("mirror.example", ten, 443, ()) is not None
    assert check_address("Mirror.Example", ipaddress.ip_address("10.9.9.9"), 443, allow) is None
    assert check_address("mirror.example", ipaddress.ip_address("10.9.9.9"), 80, allow)
    assert check_address("h", ipaddress.ip_address("fd00::1"), 8080, allow) is None
    assert check_address("h", ipaddress.ip_address("fd00::1"), 443, allow) is not None


def test_a_rebinding_answer_after_the_check_is_never_connected_to(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name answers an allowed address (127.0.0.1, listed) at the check, then a refused
    one (127.0.0.2): the connection goes to the checked address, never to the second one,
    whoever resolves the name again (the stub replaces the system resolver for everyone)."""
    resolver = RebindingResolver("rebind.example", "127.0.0.1", "127.0.0.2")
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    CONNECTS.clear()
    policy = FetchPolicy(allow=parse_allow_list("127.0.0.1/32"))
    url = f"http://rebind.example:{server.port}/files/play.yml"
    assert fetch(url, policy) == b"- hosts: all\n"
    assert server.hits == [("/files/play.yml", f"rebind.example:{server.port}")]
    assert "127.0.0.2" not in CONNECTS and "127.0.0.1" in CONNECTS
    assert resolver.lookups == 1  # resolved once, by the check; the connect used its answer


def test_each_redirect_hop_is_resolved_and_checked_again(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A redirect back to the same name is a new lookup and a new check: the rebound answer
    (127.0.0.2, not listed) is refused at that hop, unconnected."""
    resolver = RebindingResolver("rebind.example", "127.0.0.1", "127.0.0.2")
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    CONNECTS.clear()
    policy = FetchPolicy(allow=parse_allow_list("127.0.0.1/32"))
    again = f"http://rebind.example:{server.port}/files/play.yml"
    with pytest.raises(FetchRefused, match=r"rebind\.example \(127\.0\.0\.2\) is a loopback"):
        fetch(f"http://rebind.example:{server.port}/redirect?to={again}", policy)
    assert [p for p, _ in server.hits] == ["/redirect"]
    assert "127.0.0.2" not in CONNECTS
    assert resolver.lookups == 2
