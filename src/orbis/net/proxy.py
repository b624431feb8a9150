"""A forward HTTP proxy on a unix socket that applies the address rule of server-side fetches.

ansible-galaxy follows URLs a template's author controls: the role or collection URL itself,
the Galaxy server's download links and their redirects, and the dependencies a role's
meta/main.yml names (`src: http://169.254.169.254/...`). Checking the names before handing
them over would miss the last ones, so every connection ansible-galaxy makes goes through this
proxy instead (HTTP(S)_PROXY in its environment): each `CONNECT host:port` (https) or
absolute-form request (http) is resolved here, every address checked with
`orbis.net.addresses` (no loopback, private, link-local/metadata... unless ORBIS_FETCH_ALLOW),
and the connection made to the checked address (no DNS rebinding in between). Redirects are new
requests, so each hop is checked. What all connections bring back is capped
(`max_bytes`); a refusal is a 403 whose text names the rule, and is kept in `refusals`.

It listens on a unix socket in the runner's folder, which the runner reaches through its mount
(`runner_relay` bridges ansible-galaxy's TCP proxy setting to it): the runner needs no route to
the service host.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from urllib.parse import urlsplit

from orbis.net.addresses import AllowEntry, IPAddress
from orbis.net.fetch import FetchError, checked_addresses

HEAD_LIMIT = 16384  # bytes of a request's line and headers
HEAD_TIMEOUT = 10.0
CONNECT_TIMEOUT = 10.0
_HOP_HEADERS = ("proxy-connection", "proxy-authorization", "connection", "keep-alive")


class GuardedProxy:
    """`async with GuardedProxy(folder, name, allow, max_bytes) as proxy:` serves
    `folder/name` until the block ends."""

    def __init__(self, folder: Path, name: str, allow: tuple[AllowEntry, ...],
                 max_bytes: int, setting: str) -> None:  # fmt: skip
        self.folder, self.name = folder, name
        self.allow = allow
        self.max_bytes = max_bytes
        self.setting = setting  # the setting that names max_bytes, for the message
        self.received = 0
        self.refusals: list[str] = []
        self._server: asyncio.AbstractServer | None = None
        self._dir_fd = -1
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> GuardedProxy:
        # bound through the folder's descriptor: short (a socket path has ~100 bytes) and a
        # link planted in place of the folder is refused
        self._dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.name, dir_fd=self._dir_fd)  # a leftover or planted entry
        path = f"/proc/self/fd/{self._dir_fd}/{self.name}"
        # no chmod (it would follow a link put in its place): the folder itself is 0700
        self._server = await asyncio.start_unix_server(self._serve, path=path)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(OSError):
            os.unlink(self.name, dir_fd=self._dir_fd)
        os.close(self._dir_fd)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(HEAD_TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > HEAD_LIMIT:
            return await _answer(writer, 431, "request head too large")
        line, *headers = head.decode("latin-1").split("\r\n")
        method, target, _version = (line.split(" ") + ["", ""])[:3]
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            host = host.strip("[]")
            url = f"https://{target}"
            first = b""
        else:
            parts = urlsplit(target)
            if parts.scheme.lower() != "http" or not parts.hostname:
                return await _answer(writer, 400, "only absolute http URLs or CONNECT")
            host, port_text, url = parts.hostname, str(parts.port or 80), target
            path = parts.path or "/"
            kept = [h for h in headers if h and h.split(":", 1)[0].strip().lower()
                    not in _HOP_HEADERS]  # fmt: skip
            query = f"?{parts.query}" if parts.query else ""
            lines = [f"{method} {path}{query} HTTP/1.1", *kept, "Connection: close", "", ""]
            first = "\r\n".join(lines).encode("latin-1")
        if not port_text.isdigit() or not host:
            return await _answer(writer, 400, f"bad target {target}")
        try:
            addresses = await checked_addresses(host, int(port_text), self.allow, url)
        except FetchError as exc:
            self.refusals.append(str(exc))
            return await _answer(writer, 403, str(exc))
        upstream = await _connect(addresses, int(port_text))
        if upstream is None:
            return await _answer(writer, 502, f"cannot connect to {host}:{port_text}")
        up_reader, up_writer = upstream
        try:
            if first:
                up_writer.write(first)
            else:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            sending = asyncio.create_task(self._pipe(reader, up_writer, count=False))
            await self._pipe(up_reader, writer, count=True)  # the answer is over: so is all
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
        finally:
            up_writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    count: bool) -> None:  # fmt: skip
        try:
            while data := await reader.read(65536):
                if count:
                    self.received += len(data)
                    if self.received > self.max_bytes:
                        self.refusals.append(f"downloads passed {self.max_bytes} bytes "
                                             f"({self.setting})")  # fmt: skip
                        writer.transport.abort()
                        return
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            writer.transport.abort()


async def _connect(addresses: list[IPAddress], port: int
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:  # fmt: skip
    for ip in addresses:  # the checked addresses, in order; never the name again
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                return await asyncio.open_connection(str(ip), port)
        except (OSError, TimeoutError):
            continue
    return None


async def _answer(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    body = f"Orbis: {text}\n".encode()
    reason = {400: "Bad Request", 403: "Forbidden", 431: "Request Header Fields Too Large",
              502: "Bad Gateway"}[status]  # fmt: skip
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    writer.write(head.encode() + body)
    with contextlib.suppress(OSError):
        await writer.drain()


# Run in the runner (python3 -c): listens on the runner's own loopback and bridges each
# connection to the proxy's unix socket, then runs the command with the proxy set. No
# protocol but http(s) for git (an ssh:// or git:// dependency would bypass the proxy).
RUNNER_RELAY = r"""
import os, socket, subprocess, sys, threading
path, argv = sys.argv[1], sys.argv[2:]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(64)
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
def serve():
    while True:
        conn, _ = srv.accept()
        up = socket.socket(socket.AF_UNIX)
        try:
            up.connect(path)
        except OSError:
            conn.close()
            continue
        threading.Thread(target=pipe, args=(conn, up), daemon=True).start()
        threading.Thread(target=pipe, args=(up, conn), daemon=True).start()
threading.Thread(target=serve, daemon=True).start()
proxy = "http://127.0.0.1:%d" % srv.getsockname()[1]
env = dict(os.environ, http_proxy=proxy, https_proxy=proxy, HTTP_PROXY=proxy,
           HTTPS_PROXY=proxy, no_proxy="", NO_PROXY="", GIT_ALLOW_PROTOCOL="http:https")
sys.exit(subprocess.call(argv, env=env))
"""


def relayed(argv: list[str], socket_path: str) -> list[str]:
    """`argv` run in the runner with every HTTP(S) connection through the proxy at
    `socket_path` (the path the runner sees)."""
    return ["python3", "-c", RUNNER_RELAY, socket_path, *argv]
