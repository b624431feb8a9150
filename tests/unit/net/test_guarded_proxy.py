"""The address-checking forward proxy Galaxy installs go through (net/proxy.py), spoken to
directly on its unix socket: an allowed CONNECT is a working tunnel (what https and TLS ride
on), a refused one names the rule and connects nowhere, and the address connected to is the one
checked (a name rebound afterwards is not looked up again)."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

from orbis.net.addresses import parse_allow_list
from orbis.net.proxy import GuardedProxy
from orbis.testing.hostile_http import hostile_server

CONNECTS: list[str] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect" and isinstance(args[1], tuple):
        CONNECTS.append(str(args[1][0]))


sys.addaudithook(_audit)


async def through(folder: Path, allow: str, request: bytes,
                  then: bytes = b"") -> tuple[bytes, list[str]]:  # fmt: skip
    """Send `request` to a proxy in `folder`; after its first answer, `then`; all it answers."""
    async with GuardedProxy(folder, "p.sock", parse_allow_list(allow), 10**6, "X") as proxy:
        reader, writer = await asyncio.open_unix_connection(str(folder / "p.sock"))
        writer.write(request)
        answer = await reader.readuntil(b"\r\n\r\n")
        if then:
            writer.write(then)
        answer += await reader.read()
        writer.close()
        return answer, proxy.refusals


def test_an_allowed_connect_is_a_tunnel(tmp_path):
    with hostile_server() as server:
        server.files["x"] = "through the tunnel"
        target = f"127.0.0.1:{server.port}"
        answer, refusals = asyncio.run(through(
            tmp_path, target, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode(),
            b"GET /files/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.1 200 Connection established")
    assert answer.endswith(b"through the tunnel") and refusals == []


def test_a_refused_connect_names_the_rule_and_connects_nowhere(tmp_path):
    CONNECTS.clear()
    answer, refusals = asyncio.run(through(
        tmp_path, "", b"CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.1 403") and b"cloud metadata service" in answer
    assert refusals and "(ORBIS_FETCH_ALLOW)" in refusals[0]
    assert "169.254.169.254" not in CONNECTS


def test_plain_http_goes_to_the_checked_address_of_a_rebound_name(tmp_path, monkeypatch):
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        ip = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    CONNECTS.clear()
    with hostile_server() as server:
        server.files["x"] = "checked"
        url = f"http://rebind.example:{server.port}/files/x"
        answer, _ = asyncio.run(through(
            tmp_path, "127.0.0.1/32",
            f"GET {url} HTTP/1.1\r\nHost: rebind.example:{server.port}\r\n\r\n".encode()))
        assert server.hits == [("/files/x", f"rebind.example:{server.port}")]
    assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"checked")
    assert lookups == ["rebind.example"] and "127.0.0.2" not in CONNECTS
