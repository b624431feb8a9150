"""AWS stand-ins for the EC2 provider's tests.

`moto_server()` runs moto's own EC2 server (a real HTTP endpoint, in a thread of this process)
on 127.0.0.1. `ec2_error_server(code)` answers every EC2 call with one recorded error answer
from `moto_fixtures/errors.json` — the errors moto never sends (quotas, throttling, refused
credentials), in the XML shape and HTTP status EC2 uses; given `upstream` (moto's URL) and
`actions`, it answers only those EC2 actions with the error and forwards every other request to
moto, so one call can fail in the middle of a real sequence. Both yield the endpoint URL; point
boto3 at it with the standard `AWS_ENDPOINT_URL_EC2` environment variable.

moto lacks one thing EC2 does that the provider relies on: CreateImage tagging the image's
snapshots (`TagSpecifications` of type `snapshot`, which moto refuses with a 500). The server
started here is taught it (see `_teach_moto`).
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

FIXTURES = Path(__file__).with_name("moto_fixtures")


@contextmanager
def moto_server() -> Iterator[str]:
    """A fresh moto server (empty account, default VPCs, moto's AMIs); yields its URL."""
    from moto.server import ThreadedMotoServer  # moto is a dev dependency only

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    _teach_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _teach_moto() -> None:
    """CreateImage applies `snapshot` tag specifications to the snapshots it makes, as EC2 does
    (moto raises NotImplementedError). Patched once per process: the server runs in-process."""
    from moto.ec2.models.amis import AmiBackend

    original = AmiBackend.create_image
    if getattr(original, "_orbis_snapshot_tags", False):
        return

    def create_image(
        self: Any,
        instance_id: str,
        name: str,
        description: str,
        tag_specifications: list[dict[str, Any]],
    ) -> Any:
        on_snapshots = [
            tag
            for spec in tag_specifications
            if spec.get("ResourceType") == "snapshot"
            for tag in spec.get("Tags") or []
        ]
        others = [s for s in tag_specifications if s.get("ResourceType") != "snapshot"]
        image = original(self, instance_id, name, description, others)
        for tag in on_snapshots:
            image.ebs_snapshot.add_tag(tag["Key"], tag["Value"])
        return image

    create_image._orbis_snapshot_tags = True  # type: ignore[attr-defined]
    AmiBackend.create_image = create_image  # type: ignore[method-assign]


def error_answers() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "errors.json").read_text())
    return data


@contextmanager
def ec2_error_server(
    code: str, *, upstream: str | None = None, actions: Collection[str] = ()
) -> Iterator[str]:
    """A server answering with EC2's error `code` (every request, or with `upstream` only the
    EC2 `actions` named, the others going to `upstream`); yields its URL."""
    answers = error_answers()
    answer = answers["errors"][code]
    body = answers["body"].format(code=code, message=answer["message"]).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            request = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            action = parse_qs(request.decode()).get("Action", [""])[0]
            if upstream and action not in actions:
                return self._forward(upstream, request)
            self._answer(answer["status"], "text/xml;charset=UTF-8", body)

        def _forward(self, url: str, request: bytes) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            forward = urllib.request.Request(url + self.path, request, headers)
            try:
                with urllib.request.urlopen(forward, timeout=30) as got:  # noqa: S310 - local
                    status, data, kind = got.status, got.read(), got.headers["Content-Type"]
            except urllib.error.HTTPError as err:  # moto's own error answers pass through
                status, data, kind = err.code, err.read(), err.headers["Content-Type"]
            self._answer(status, kind or "text/xml", data)

        def _answer(self, status: int, kind: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

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
