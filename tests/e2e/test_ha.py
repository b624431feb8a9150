"""Two servers on one PostgreSQL or MariaDB database (high availability, docs/operations.md).

A 3-node deployment sent to server A, A killed (kill -9) a second later: server B takes the
work over once A's lease expires and finishes it, with no node launched twice. Then 8 additions
of one node each, sent at once and spread over both servers, end with exactly 8 more nodes.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import docker
import httpx
import pytest

from orbis.testing.cluster import servers, settled, vm_ids_of_containers, wait_for
from orbis.testing.server import RunningServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

THREE_NODES = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    node:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {count: 3}}
      interfaces:
        Standard:
          configure:
            implementation: |
              - hosts: all
                gather_facts: false
                tasks:
                  - ansible.builtin.command: "true"
"""
ONE_MORE = "system node ( )\ndeploy node 1\n"  # RADL: add one node of the existing system
YAML = {"Content-Type": "text/yaml"}


@pytest.mark.parametrize("shared_db", ["postgresql", "mariadb"], indirect=True)
def test_kill_one_server_mid_deploy_the_other_finishes_and_adds_through_both_are_exact(
    engine_url, shared_db, tmp_path
):
    engine = docker.DockerClient(base_url=engine_url)
    with servers(engine_url, shared_db, tmp_path) as (a, b), b.client() as client_b:
        with a.client() as client_a:
            made = client_a.post("/infrastructures", params={"async": "yes"},
                                 content=THREE_NODES, headers=YAML)  # fmt: skip
        assert made.status_code == 200, made.text
        infra_id = made.text.rsplit("/", 1)[-1]
        time.sleep(1)
        a.kill()

        detail = wait_for(lambda: settled(client_b, infra_id))
        assert [n["state"] for n in detail["nodes"]] == ["configured"] * 3, detail
        assert vm_ids_of_containers(engine, infra_id) == [0, 1, 2]  # none twice, none orphaned
        assert "Deploying infrastructure" in client_b.get(
            f"/infrastructures/{infra_id}/contmsg").text

        a.start()  # two servers again; 8 additions at once, alternating between them

        def add_one(server: RunningServer) -> httpx.Response:
            with server.client() as client:
                return client.post(f"/infrastructures/{infra_id}", content=ONE_MORE,
                                   headers={"Content-Type": "text/plain"})  # fmt: skip

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(add_one, [a, b] * 4))
        assert [r.status_code for r in answers] == [200] * 8, [r.text for r in answers]

        detail = wait_for(lambda: settled(client_b, infra_id), timeout=300)
        assert [n["state"] for n in detail["nodes"]] == ["configured"] * 11, detail
        assert sorted(n["vm_id"] for n in detail["nodes"]) == list(range(11))
        assert vm_ids_of_containers(engine, infra_id) == list(range(11))

        assert client_b.delete(f"/infrastructures/{infra_id}").status_code == 200
        assert vm_ids_of_containers(engine, infra_id) == []
