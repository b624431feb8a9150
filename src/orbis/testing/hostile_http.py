"""A hostile HTTP server on 127.0.0.1 for download tests: redirects, huge and slow bodies.

`hostile_server()` yields a `HostileServer` whose `url` answers:
- `/files/<name>`: the text (or bytes) registered in `server.files[name]` (404 otherwise);
- `/redirect?to=<url>`: 302 to that URL;
- `/big?bytes=N`: N bytes of 'x' with no Content-Length (the end is the connection's close),
  generated 64 KiB at a time, so a 1 GB answer never exists in memory; `bytes_sent` counts
  what the socket accepted before the client hung up;
- `/declared-big`: headers announcing a 1 GB body, then the body lazily like `/big`;
- `/drip`: a 200 that sends one byte every 0.2 s until the client hangs up.
Every request is recorded in `hits` as (path, Host header).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

GIB = 1024**3
_CHUNK = b"x" * 65536


@dataclass
class HostileServer:
    url: str = ""
    port: int = 0
    files: dict[str, str | bytes] = field(default_factory=dict)
    hits: list[tuple[str, str]] = field(default_factory=list)
    bytes_sent: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)


def _handler(state: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            parts = urlsplit(self.path)
            state.hits.append((parts.path, self.headers.get("Host", "")))
            query = parse_qs(parts.query)
            if parts.path.startswith("/files/") and parts.path[7:] in state.files:
                body = state.files[parts.path[7:]]
                self._answer(200, body if isinstance(body, bytes) else body.encode())
            elif parts.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", query["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif parts.path == "/big":
                self.send_response(200)
                self.end_headers()
                self._stream(int(query.get("bytes", [str(GIB)])[0]))
            elif parts.path == "/declared-big":
                self.send_response(200)
                self.send_header("Content-Length", str(GIB))
                self.end_headers()
                self._stream(GIB)
            elif parts.path == "/drip":
                self.send_response(200)
                self.end_headers()
                while not state.stopping.is_set() and self._write(b"x"):
                    time.sleep(0.2)
            else:
                self._answer(404, b"")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _stream(self, total: int) -> None:
            left = total
            while left > 0 and not state.stopping.is_set():
                piece = _CHUNK[: min(left, len(_CHUNK))]
                if not self._write(piece):
                    return
                left -= len(piece)

        def _write(self, data: bytes) -> bool:
            try:
                self.wfile.write(data)
                self.wfile.flush()
            except OSError:  # the client hung up: what it refused to read is never sent
                return False
            state.bytes_sent += len(data)
            return True

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def hostile_server() -> Iterator[HostileServer]:
    state = HostileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = int(httpd.server_address[1])
    state.url = f"http://127.0.0.1:{state.port}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        httpd.shutdown()
        httpd.server_close()


class RebindingResolver:
    """A stand-in for `socket.getaddrinfo` whose answer for `name` changes between lookups:
    `first` at the first (the address check), `later` afterwards (the connect): a DNS
    rebinding attack. Other names resolve as usual."""

    def __init__(self, name: str, first: str = "127.0.0.1", later: str = "127.0.0.2") -> None:
        self.name, self.first, self.later = name, first, later
        self.lookups = 0
        self.real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != self.name:
            return self.real(host, port, *args, **kwargs)
        self.lookups += 1
        ip = self.first if self.lookups == 1 else self.later
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port or 0)))]
