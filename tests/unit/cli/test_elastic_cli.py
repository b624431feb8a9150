"""`orbis elastic ID --follow`: the view, then each decision the stream carries as it comes,
from the event after the view's last one."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from orbis.cli.client import OrbisClient
from orbis.cli.main import app

INFRA = "4b1f7a2e-0000-4000-8000-000000000002"
VIEW: dict[str, Any] = {
    "id": INFRA, "lrms": "slurm", "front": "front", "partition": "debug",
    "pools": [{"compute": "wn", "min": 0, "max": 3, "cpus": 1, "memory_mb": 400,
               "names": ["wn1", "wn2", "wn3"], "reuse": True, "destroy_interval": 3600.0,
               "destroy_safe": 0.0}],
    "knobs": {"idle_time": 300.0, "max_booting": 2, "cooldown": 0.0, "warm_spares": 0,
              "join_retries": 3, "boot_deadline": 600.0, "poll": 5.0},
    "monitor": "host:1", "error": "", "join_failures": {}, "decisions": [], "last_event": 41,
}  # fmt: skip
STREAM = (
    'event: detail\ndata: {"state": "configured"}\n\n'
    'id: 42\nevent: elastic\ndata: {"id": 42, "at": "2026-12-06T21:00:05+00:00", '
    '"action": "power_on", "reason": "1 job pending need 1 CPU; powering on a worker on wn '
    '(VM 3, wn1)", "pool": "wn", "vm_id": 3}\n\n'
    'id: 43\nevent: event\ndata: {"id": 43, "subject": "node"}\n\n'
    'event: end\ndata: {"state": "deleted"}\n\n'
)


def test_follow_prints_each_new_decision(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        if request.url.path.endswith("/stream"):
            return httpx.Response(200, text=STREAM,
                                  headers={"Content-Type": "text/event-stream"})  # fmt: skip
        return httpx.Response(200, json=VIEW)

    auth = tmp_path / "auth.dat"
    auth.write_text("id = orbis; type = InfrastructureManager; username = u; password = p\n")
    monkeypatch.setenv("ORBIS_AUTH", str(auth))
    api = OrbisClient("http://orbis.test")
    api.http = httpx.Client(base_url=api.url, transport=httpx.MockTransport(server))
    monkeypatch.setattr("orbis.cli.elastic.client", lambda: api)

    result = CliRunner().invoke(app, ["elastic", INFRA, "--follow"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    # the console's width is the terminal's (80 when none), whatever COLUMNS says once the
    # console exists: compare the words, not where the lines wrap
    words = " ".join(result.output.split())
    assert "wn 0..3 × 1 CPU (names wn1..wn3; stopped when idle; paid by 3600 s)" in words
    assert ("21:00:05 power_on [wn]: 1 job pending need 1 CPU; powering on a worker on wn "
            "(VM 3, wn1)") in words
    assert "subject" not in result.output  # other events are not decisions
    stream = asked[-1]
    assert stream.url.params["follow"] == "1" and stream.url.params["after"] == "41"
