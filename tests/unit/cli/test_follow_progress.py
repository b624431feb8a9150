"""`orbis` commands wait for the work they asked for, not for the previous run's end."""

from __future__ import annotations

from typing import Any

import httpx

from orbis.cli.client import OrbisClient
from orbis.cli.progress import follow

INFRA = "4b1f7a2e-0000-4000-8000-000000000001"


def view(phase: str, generation: int, reconciled: int) -> dict[str, Any]:
    node = {"vm_id": 0, "name": "wn", "state": "configured", "private_ip": None,
            "public_ip": None, "error": None, "current_step": None, "steps": []}  # fmt: skip
    return {"id": INFRA, "phase": phase, "state": "configured", "generation": generation,
            "reconciled": reconciled, "nodes": [node]}  # fmt: skip


def test_follow_waits_until_the_asked_generation_is_reconciled(tmp_path, monkeypatch):
    # Just after `orbis reconfigure` the engine has not picked the work up: the phase still
    # reads `done` and every node `configured`, from the run before.
    views = [view("done", 5, 4), view("configuring", 5, 4), view("done", 5, 5)]
    served: list[dict[str, Any]] = []

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/stream"):
            return httpx.Response(404)  # the client falls back to polling the detail view
        served.append(views[min(len(served), len(views) - 1)])
        return httpx.Response(200, json=served[-1])

    auth = tmp_path / "auth.dat"
    auth.write_text("id = orbis; type = InfrastructureManager; username = u; password = p\n")
    monkeypatch.setenv("ORBIS_AUTH", str(auth))
    api = OrbisClient("http://orbis.test")
    api.http = httpx.Client(base_url=api.url, transport=httpx.MockTransport(server))
    monkeypatch.setattr("orbis.cli.progress.time.sleep", lambda _: None)

    last = follow(api, INFRA)

    assert last["reconciled"] == 5
    assert len(served) == 3
