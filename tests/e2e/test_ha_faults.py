"""The database goes away for 10 s in the middle of a deployment (a proxy between the server
and PostgreSQL is cut): requests get 503 without a traceback, nothing is lost, and the
deployment goes on once the database is back."""

from __future__ import annotations

import time

import docker
import httpx
import pytest
from sqlalchemy.engine import make_url

from orbis.testing.cluster import servers, settled, vm_ids_of_containers, wait_for
from orbis.testing.tcp_proxy import CuttableProxy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TWO_SLOW_NODES = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    node:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {count: 2}}
      interfaces:
        Standard:
          configure:
            implementation: |
              - hosts: all
                gather_facts: false
                tasks:
                  - ansible.builtin.command: sleep 3
"""


@pytest.fixture
def proxied_db(shared_db):
    """(the database's URL, the URL through a proxy the test can cut, the proxy)"""
    url = make_url(shared_db)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    yield shared_db, url.set(port=proxy.port).render_as_string(hide_password=False), proxy
    proxy.close()


@pytest.mark.parametrize("shared_db", ["postgresql"], indirect=True)
def test_database_away_for_ten_seconds_mid_deploy(engine_url, proxied_db, tmp_path):
    direct, through_proxy, proxy = proxied_db
    engine = docker.DockerClient(base_url=engine_url)
    with servers(engine_url, through_proxy, tmp_path, count=1) as (server,), \
            server.client() as client:  # fmt: skip
        made = client.post("/infrastructures", params={"async": "yes"},
                           content=TWO_SLOW_NODES, headers={"Content-Type": "text/yaml"})
        assert made.status_code == 200, made.text
        infra_id = made.text.rsplit("/", 1)[-1]
        wait_for(lambda: client.get(f"/orbis/infrastructures/{infra_id}").json()["phase"]
                 in ("launching", "configuring"))  # fmt: skip

        proxy.cut()
        cut_at = time.monotonic()
        answers: list[httpx.Response] = []
        while time.monotonic() - cut_at < 10:
            answers.append(client.get("/infrastructures"))
            answers.append(client.get(f"/infrastructures/{infra_id}/state"))
            time.sleep(0.5)
        ready = client.get("/ready")
        proxy.restore()

        assert [r.status_code for r in answers] == [503] * len(answers), [
            (r.request.url.path, r.status_code) for r in answers]
        assert "database does not answer" in answers[-1].text
        assert ready.status_code == 503 and "database" in ready.json()["reason"]
        assert client.get("/health").status_code == 200  # alive all along

        detail = wait_for(lambda: settled(client, infra_id), timeout=240)
        assert [n["state"] for n in detail["nodes"]] == ["configured"] * 2, detail
        assert vm_ids_of_containers(engine, infra_id) == [0, 1]
        assert client.get("/ready").status_code == 200
        log = (server.home / "server.log").read_text()
        assert "Traceback" not in log, log[-3000:]
        assert "database unavailable" in log or "database unreachable" in log
