"""What the local back-end asks its engine when it launches and destroys nodes, seen by a small
HTTP engine on 127.0.0.1 that answers like the Docker API and records every request:

- a launch creates at once (no list of containers before each creation), asks for the image
  once for many launches, and makes the node with stop_timeout 0 (a destroy kills it rather
  than waiting for systemd's shutdown);
- a name taken by an earlier try is resolved by the conflict: that container is started;
- an infrastructure's cleanup removes its containers all at once, from the list's summaries
  (no inspect of each one first): every removal is in the engine at the same moment, which a
  barrier in the engine checks (one removal after another would never fill it).
The real engine's side is tests/e2e (test_local_provider.py, test_deploy.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from orbis.providers.base import LABEL_INFRASTRUCTURE, NodeSpec
from orbis.providers.local import LocalProvider

INFRA = "0b9c3c1e-5d2a-4f4e-9a57-2b1f6b1c0d11"
REMOVED = 3  # containers of the infrastructure the cleanup test removes


class Engine(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, str, Any]] = []
        self.taken: set[str] = set()  # container names that exist (create answers 409)
        self.barrier = threading.Barrier(REMOVED, timeout=30)  # a fail-safe, not a measure
        self.together: list[bool] = []

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.server_address[1]}"

    def calls(self, method: str, part: str) -> list[str]:
        return [p for m, p, _ in self.requests if m == method and part in p]


class Handler(BaseHTTPRequestHandler):
    server: Engine

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, payload: Any = None) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self) -> tuple[str, Any]:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None  # a tar archive
        self.server.requests.append((self.command, self.path, body))
        return path, body

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path, _ = self._record()
        if path.endswith("/_ping"):
            self._answer(200, "OK")
        elif path.endswith("/version"):
            self._answer(200, {"ApiVersion": "1.41", "Components": [{"Name": "Engine"}]})
        elif path.endswith("/networks"):
            self._answer(200, [{"Name": f"orbis-{INFRA}", "Id": "n1",
                                "Labels": {LABEL_INFRASTRUCTURE: INFRA}}])  # fmt: skip
        elif path.endswith("/volumes"):
            self._answer(200, {"Volumes": []})
        elif "/images/" in path:
            self._answer(200, {"Id": "sha256:1", "RepoTags": ["orbis-node:latest"]})
        elif path.endswith("/containers/json"):
            labels = {LABEL_INFRASTRUCTURE: INFRA, "orbis.node": "n.0", "orbis.vm_id": "0"}
            self._answer(200, [{"Id": f"c{i}", "Labels": labels, "State": "running"}
                               for i in range(REMOVED)])  # fmt: skip
        elif path.endswith("/json"):  # inspect
            cid = path.split("/")[-2]
            self._answer(200, {"Id": cid, "Name": cid, "State": {"Status": "running"},
                               "Config": {"Labels": {LABEL_INFRASTRUCTURE: INFRA,
                                                     "orbis.node": "node.0"}},
                               "NetworkSettings": {"Networks": {}}})  # fmt: skip
        else:
            self._answer(404, {"message": f"no {path} here"})

    def do_POST(self) -> None:  # noqa: N802
        path, body = self._record()
        if path.endswith("/containers/create"):
            name = self.path.split("name=", 1)[-1]
            if name in self.server.taken:
                self._answer(409, {"message": f"the container name {name} is already in use"})
                return
            self._answer(201, {"Id": f"new-{name}"})
        elif path.endswith("/start"):
            self._answer(204)
        else:
            self._answer(404, {"message": f"no {path} here"})

    def do_PUT(self) -> None:  # noqa: N802
        self._record()
        self._answer(200)

    def do_DELETE(self) -> None:  # noqa: N802
        path, _ = self._record()
        if "/containers/" in path:
            try:
                self.server.barrier.wait()  # every removal of the cleanup is here at once
                self.server.together.append(True)
            except threading.BrokenBarrierError:
                self.server.together.append(False)
        self._answer(204)


@pytest.fixture
def engine() -> Iterator[Engine]:
    server = Engine()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def spec(vm_id: int) -> NodeSpec:
    return NodeSpec(INFRA, vm_id, "node", ssh_public_key="ssh-ed25519 AAAA test")


def test_launches_create_at_once_and_ask_for_the_image_once(engine: Engine) -> None:
    provider = LocalProvider(base_url=engine.url)
    for vm_id in range(3):
        provider.launch(spec(vm_id))
    assert not engine.calls("GET", "/containers/json")  # no list before a creation
    assert len(engine.calls("GET", "/images/")) == 1
    creates = [b for m, p, b in engine.requests if m == "POST" and "/containers/create" in p]
    assert len(creates) == 3
    # forced removal (destroy) waits nothing: SIGKILL; stop/reboot give their own timeout
    assert all(c["StopTimeout"] == 0 and c["StopSignal"] == "SIGRTMIN+3" for c in creates)
    # one inspect per node (its addresses once started), not one more after the creation
    assert len([p for p in engine.calls("GET", "/containers/") if p.endswith("/json")
                and "/containers/json" not in p]) == 3  # fmt: skip


def test_a_container_left_by_an_earlier_try_is_found_by_its_name(engine: Engine) -> None:
    provider = LocalProvider(base_url=engine.url)
    engine.taken.add(f"orbis-{INFRA}-node-0")
    machine = provider.launch(spec(0))
    assert engine.calls("GET", "/containers/json")  # looked up after the conflict only
    assert machine.provider_id == "c0"  # the one that was there, not a second one


def test_cleanup_removes_every_container_at_once_without_inspecting_each(engine: Engine) -> None:
    LocalProvider(base_url=engine.url).cleanup(INFRA)
    removals = engine.calls("DELETE", "/containers/")
    assert len(removals) == REMOVED and all("force=True" in p for p in removals)
    assert engine.together == [True] * REMOVED, "removals were not in the engine together"
    inspects = [p for p in engine.calls("GET", "/containers/") if "/containers/json" not in p]
    assert not inspects
    assert engine.calls("DELETE", "/networks/")
