"""AWS stand-ins for the EC2 provider's tests.

`moto_server()` runs moto's own EC2 server (a real HTTP endpoint, in a thread of this process)
on 127.0.0.1. `ec2_error_server(code)` answers every EC2 call with one recorded error answer
from `moto_fixtures/errors.json` — the errors moto never sends (quotas, throttling, refused
credentials), in the XML shape and HTTP status EC2 uses. Both yield the endpoint URL; point
boto3 at it with the standard `AWS_ENDPOINT_URL_EC2` environment variable.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).with_name("moto_fixtures")


@contextmanager
def moto_server() -> Iterator[str]:
    """A fresh moto server (empty account, default VPCs, moto's AMIs); yields its URL."""
    from moto.server import ThreadedMotoServer  # moto is a dev dependency only

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def error_answers() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "errors.json").read_text())
    return data


@contextmanager
def ec2_error_server(code: str) -> Iterator[str]:
    """A server answering every request with EC2's error `code`; yields its URL."""
    answers = error_answers()
    answer = answers["errors"][code]
    body = answers["body"].format(code=code, message=answer["message"]).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(answer["status"])
            self.send_header("Content-Type", "text/xml;charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
