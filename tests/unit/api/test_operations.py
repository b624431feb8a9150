"""Operator routes: /health, /ready, /metrics; JSON logs; a server refusing a newer schema;
`orbis server --workers 2` answering alike from both processes, SSE progress included."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import text

from orbis.logs import JsonFormatter
from orbis.testing.server import RunningServer

from .conftest import ALICE, create


def test_ready_needs_the_database_and_its_current_schema(make_client):
    client = make_client()
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/ready").status_code == 200
    store = client.app.state.service.store
    with store.engine.begin() as conn:
        newest = max(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = :v"), {"v": newest})
    answer = client.get("/ready")
    assert answer.status_code == 503
    assert "schema" in answer.json()["reason"]
    assert client.get("/health").status_code == 200  # alive all the same


def test_metrics_count_requests_and_read_the_store(make_client):
    client = make_client()
    infra = create(client)
    client.get(f"/infrastructures/{infra}/state", headers={"Authorization": ALICE})
    body = client.get("/metrics").text
    assert 'orbis_http_requests_total{method="POST",route="/infrastructures",status="200"}' in body
    assert 'route="/infrastructures/{id}/state"' in body  # ids are not label values
    assert "orbis_http_request_duration_seconds_bucket" in body
    assert "orbis_lease_takeovers_total" in body
    assert 'orbis_infrastructures{phase=' in body
    assert 'orbis_operations{state="waiting"}' in body


def test_json_log_lines():
    record = logging.LogRecord("orbis.x", logging.WARNING, __file__, 1, "lost %s", ("it",), None)
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["level"], entry["logger"], entry["message"]) == ("warning", "orbis.x", "lost it")


def test_a_server_refuses_a_database_a_newer_orbis_migrated(tmp_path):
    url = f"sqlite:///{tmp_path / 'orbis.db'}"
    from orbis.store.repository import Store

    with Store(url).engine.begin() as conn:
        newest = max(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        conn.execute(text("UPDATE alembic_version SET version_num = '9999' "
                          "WHERE version_num = :v"), {"v": newest})  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "orbis.cli.main", "server"], capture_output=True, text=True,
        env={**os.environ, "ORBIS_HOME": str(tmp_path), "ORBIS_DB_URL": url}, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3
    assert "refusing to start" in done.stderr and "9999, newer than this Orbis" in done.stderr
    assert "Traceback" not in done.stderr


def test_workers_share_one_port_and_their_metrics(tmp_path: Path):
    server = RunningServer(tmp_path, None, "tester", env={"ORBIS_PROVIDER": "sim"},
                           args=("--workers", "2"))  # fmt: skip
    server.start()
    try:
        header = {"Authorization": server.auth_file.read_text().strip()}
        answers = {httpx.get(f"{server.url}/infrastructures", headers=header).status_code
                   for _ in range(20)}  # fresh connections, spread over the workers
        assert answers == {200}
        metrics = httpx.get(f"{server.url}/metrics").text
        # both workers' counters summed (multiprocess mode): all 20, wherever they landed
        assert ('orbis_http_requests_total{method="GET",route="/infrastructures",status="200"}'
                " 20.0") in metrics
        log = (tmp_path / "server.log").read_text()
        assert len(set(re.findall(r"Started server process \[(\d+)\]", log))) == 2, log
    finally:
        server.stop()


def test_progress_of_work_running_on_another_server_streams_alike(tmp_path: Path):
    """Server B streams (SSE) what server A's engine does: the stream reads the store."""
    env = {"ORBIS_PROVIDER": "sim", "ORBIS_SIM_CONFIG_SECONDS": "1",
           "ORBIS_DB_URL": f"sqlite:///{tmp_path / 'shared.db'}", "ORBIS_SECRET_KEY": "s" * 32}
    a_home, b_home = tmp_path / "a", tmp_path / "b"
    a_home.mkdir()
    b_home.mkdir()
    a, b = RunningServer(a_home, None, "tester", env), RunningServer(b_home, None, "tester", env)
    a.start()
    b.start()
    try:
        with a.client() as to_a, b.client() as to_b:
            made = to_a.post("/infrastructures", params={"async": "yes"}, content=TWO_NODES,
                             headers={"Content-Type": "text/yaml"})  # fmt: skip
            infra = made.text.rsplit("/", 1)[-1]
            kinds, last = [], ""
            with to_b.stream("GET", f"/orbis/infrastructures/{infra}/stream") as stream:
                for line in stream.iter_lines():
                    if line.startswith("event: "):
                        kinds.append(line[7:])
                    if line.startswith("data: "):
                        last = line[6:]
            assert kinds[0] == "detail" and kinds[-1] == "end" and "event" in kinds, kinds
            assert json.loads(last)["state"] == "configured"
        # the work was A's (every provider action is recorded with the process that ran it)
        from orbis.store.coordination import ActionLog
        from orbis.store.repository import Store

        holders = {act.holder.split(":")[1]
                   for act in ActionLog(Store(env["ORBIS_DB_URL"]), "").actions(infra)}
        assert holders == {str(a.proc.pid)}, (holders, a.proc.pid, b.proc.pid)
    finally:
        a.destroy_all()
        a.stop()
        b.stop()


TWO_NODES = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    front:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {count: 2}}
"""
