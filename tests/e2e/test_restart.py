"""A restart of the service loses no infrastructure, and a deployment cut by kill -9 finishes."""

from __future__ import annotations

import time

import docker
import pytest

from orbis.providers.base import LABEL_INFRASTRUCTURE, LABEL_RUNNER
from orbis.testing.server import orbis_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SLOW_TWO_NODES = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    node:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties:
            count: 2
      interfaces:
        Standard:
          configure:
            implementation: |
              - hosts: all
                gather_facts: false
                tasks:
                  - name: take a while
                    ansible.builtin.command: sleep 4
                  - name: leave a mark
                    ansible.builtin.copy:
                      dest: /root/mark
                      content: "done\\n"
"""


def containers(engine: docker.DockerClient, label: dict) -> list[dict]:
    """Containers with a label, from the engine's list answer (no per-container inspect, which
    fails when a container goes away in between, as during a destroy)."""
    found = engine.api.containers(all=True, filters=label)
    return [c for c in found if LABEL_RUNNER not in (c.get("Labels") or {})]  # nodes only


def wait_for(predicate, timeout: float = 120, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out")


def test_kill_during_configuration_then_restart_finishes(engine_url):
    engine = docker.DockerClient(base_url=engine_url)
    with orbis_server(engine_url) as server, server.client() as client:
        answer = client.post(
            "/infrastructures",
            params={"async": "yes"},
            content=SLOW_TWO_NODES,
            headers={"Content-Type": "text/yaml"},
        )
        infra_id = answer.text.rsplit("/", 1)[-1]

        def configuring() -> bool:
            detail = client.get(f"/orbis/infrastructures/{infra_id}").json()
            return any(n["current_step"] for n in detail["nodes"])

        wait_for(configuring)
        server.kill()  # in the middle of the Ansible step
        server.start()
        # the infrastructure is still there, and the deployment goes on to the end
        assert infra_id in client.get("/infrastructures").text

        def settled() -> str | None:
            detail = client.get(f"/orbis/infrastructures/{infra_id}").json()
            return detail["state"] if detail["phase"] == "done" else None

        assert wait_for(settled) == "configured"
        label = {"label": f"{LABEL_INFRASTRUCTURE}={infra_id}"}
        assert len(containers(engine, label)) == 2  # none twice
        assert client.delete(f"/infrastructures/{infra_id}").status_code == 200
        assert containers(engine, label) == []
        assert engine.networks.list(filters=label) == []


def test_another_installation_on_the_same_engine_leaves_ours_alone(engine_url):
    engine = docker.DockerClient(base_url=engine_url)
    with orbis_server(engine_url) as ours, ours.client() as client:
        answer = client.post("/infrastructures", content=SLOW_TWO_NODES.replace("sleep 4", "true"),
                             headers={"Content-Type": "text/yaml"})  # fmt: skip
        infra_id = answer.text.rsplit("/", 1)[-1]
        label = {"label": f"{LABEL_INFRASTRUCTURE}={infra_id}"}
        assert len(containers(engine, label)) == 2
        # a second Orbis, with its own database, starts and sweeps its orphans
        with orbis_server(engine_url, user="someone-else"):
            pass
        assert len(containers(engine, label)) == 2
        assert client.delete(f"/infrastructures/{infra_id}").status_code == 200
        assert containers(engine, label) == []


def test_kill_during_update_and_during_destroy(engine_url):
    engine = docker.DockerClient(base_url=engine_url)
    quick = SLOW_TWO_NODES.replace("sleep 4", "sleep 1")
    with orbis_server(engine_url) as server, server.client() as client:
        answer = client.post("/infrastructures", content=quick,
                             headers={"Content-Type": "text/yaml"})  # fmt: skip
        infra_id = answer.text.rsplit("/", 1)[-1]
        label = {"label": f"{LABEL_INFRASTRUCTURE}={infra_id}"}

        def settled() -> str | None:
            detail = client.get(f"/orbis/infrastructures/{infra_id}").json()
            done = detail["reconciled"] >= detail["generation"] and detail["phase"] == "done"
            return detail["state"] if done else None

        assert wait_for(settled) == "configured"
        # an update (2 → 4 nodes), killed while the new nodes start
        more = ("topology_template:\n  node_templates:\n    node:\n      capabilities:\n"
                "        scalable: {properties: {count: 4}}\n")  # fmt: skip
        client.post(f"/infrastructures/{infra_id}", content=more,
                    headers={"Content-Type": "text/yaml"})  # fmt: skip
        time.sleep(0.5)
        server.kill()
        server.start()
        assert wait_for(settled) == "configured"
        assert len(containers(engine, label)) == 4
        # a destroy, killed half-way
        client.delete(f"/infrastructures/{infra_id}", params={"async": "yes"})
        time.sleep(0.3)
        server.kill()
        server.start()
        wait_for(lambda: containers(engine, label) == [])
        wait_for(lambda: engine.networks.list(filters=label) == [])
        assert client.get(f"/infrastructures/{infra_id}/state").status_code == 404
