"""An infrastructure's network is created isolated: through podman's libpod API with
`isolate: true` when the engine is podman, through the Docker API when it is a Docker daemon
(which isolates user bridge networks by default). The provider talks to a small HTTP engine on
127.0.0.1 that answers like each engine and records the requests it gets; the end-to-end proof
that nodes of two infrastructures cannot reach each other is tests/e2e/test_network_isolation.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from orbis.providers.base import LABEL_INFRASTRUCTURE
from orbis.providers.local import LocalProvider, network_name
from orbis.providers.local_network import (
    DOCKER_BRIDGE_NAME,
    LIBPOD_NETWORK_CREATE,
    libpod_network_body,
)

INFRA = "0b9c3c1e-5d2a-4f4e-9a57-2b1f6b1c0d11"
PODMAN_COMPONENTS = [{"Name": "Podman Engine", "Version": "4.3.1"}]
DOCKER_COMPONENTS = [{"Name": "Engine", "Version": "24.0.7"}]


class RecordingEngine(ThreadingHTTPServer):
    """Answers /_ping, /version, network listing and creation; keeps (method, path, body)."""

    def __init__(self, components: list[dict[str, str]], create_status: int = 201) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.components = components
        self.create_status = create_status
        self.requests: list[tuple[str, str, Any]] = []

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.server_address[1]}"

    def creates(self) -> list[tuple[str, Any]]:
        return [(path, body) for method, path, body in self.requests
                if method == "POST" and path.endswith("/networks/create")]  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    server: RecordingEngine

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, payload: Any) -> None:
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        self.server.requests.append(("GET", path, None))
        if path.endswith("/_ping"):
            self._answer(200, "OK")
        elif path.endswith("/version"):
            self._answer(200, {"ApiVersion": "1.41", "Components": self.server.components})
        elif path.endswith("/networks"):
            self._answer(200, [])
        elif "/networks/" in path:  # the Docker SDK reads back what it created
            self._answer(200, {"Id": path.rsplit("/", 1)[-1], "Name": network_name(INFRA)})
        else:
            self._answer(404, {"message": f"no {path} here"})

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        self.server.requests.append(("POST", self.path, body))
        if self.server.create_status >= 400:
            self._answer(self.server.create_status, {"message": "network name already used"})
        else:
            self._answer(self.server.create_status, {"Id": "n1", "name": body.get("name")})


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Iterator[RecordingEngine]:
    server = RecordingEngine(*request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("engine", [(PODMAN_COMPONENTS,)], indirect=True)
def test_podman_network_is_created_isolated_through_libpod(engine: RecordingEngine) -> None:
    LocalProvider(base_url=engine.url).prepare(INFRA)
    ((path, body),) = engine.creates()
    assert path == LIBPOD_NETWORK_CREATE
    assert body["options"] == {"isolate": "true"}
    assert body["network_interface"].startswith("orbis")  # what the link-local guard matches
    assert body["name"] == network_name(INFRA)
    assert body["driver"] == "bridge"
    assert body["labels"][LABEL_INFRASTRUCTURE] == INFRA  # cleanup and the sweep find it


@pytest.mark.parametrize("engine", [(DOCKER_COMPONENTS,)], indirect=True)
def test_docker_network_is_created_through_the_docker_api(engine: RecordingEngine) -> None:
    LocalProvider(base_url=engine.url).prepare(INFRA)
    ((path, body),) = engine.creates()
    assert "libpod" not in path
    assert body["Name"] == network_name(INFRA)
    assert body["Driver"] == "bridge"
    assert body["Labels"][LABEL_INFRASTRUCTURE] == INFRA
    # an orbis* bridge, which the host's link-local guard matches (test_engine_guard.py)
    assert body["Options"][DOCKER_BRIDGE_NAME].startswith("orbis")


@pytest.mark.parametrize("engine", [(PODMAN_COMPONENTS, 409)], indirect=True)
def test_a_name_taken_meanwhile_is_not_an_error(engine: RecordingEngine) -> None:
    """libpod's 409 comes back as the SDK's APIError, which prepare treats as "made by a
    parallel call" exactly as before."""
    LocalProvider(base_url=engine.url).prepare(INFRA)
    assert len(engine.creates()) == 1


def test_each_network_gets_a_bridge_name_no_earlier_network_had() -> None:
    # CNI leaves an isolated bridge's DROP rules behind and podman reuses cni-podmanN names:
    # a reused name would silently cut a new network off (docs/local-backend.md)
    names = {libpod_network_body("n", {})["network_interface"] for _ in range(50)}
    assert len(names) == 50
    assert all(len(n) <= 15 and not n.startswith("cni-podman") for n in names)


def test_a_site_network_asks_for_jumbo_frames_and_the_internet_stands_at_1500() -> None:
    from orbis.providers.local_sites import SITE_MTU

    assert libpod_network_body("n", {}, SITE_MTU)["options"] == {"isolate": "true", "mtu": "9000"}
    assert libpod_network_body("n", {})["options"] == {"isolate": "true"}


@pytest.mark.parametrize("engine", [(PODMAN_COMPONENTS,)], indirect=True)
def test_the_network_is_listed_once_not_once_per_launch(engine: RecordingEngine) -> None:
    """Every launch asks for its infrastructure's network under one lock: 20 launches at once
    used to queue for 20 list calls. Made (or seen) once, it is remembered."""
    provider = LocalProvider(base_url=engine.url)
    threads = [threading.Thread(target=provider.prepare, args=(INFRA,)) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lists = [path for method, path, _ in engine.requests
             if method == "GET" and path.endswith("/networks")]  # fmt: skip
    assert len(lists) == 1 and len(engine.creates()) == 1
