"""kill -9 at random moments of a 3-node local deployment, then restart: does it finish?

For each of N kill points (uniform over a typical deployment's duration), the server is killed
with SIGKILL, restarted on the same store, and the infrastructure is followed to its end.
Each kill is classified by the phase it hit, read from the API a moment before the kill:
provisioning (nodes not launched yet), SSH wait (launched, no step started), Ansible (a step
running), finished (already configured: such a kill proves nothing and is not counted).
Prints how many counted kills reached "configured", how many containers were created twice
(duplicates) and what was left behind after destroy (orphans), per phase and in all.
Target: all counted kills configured, 0, 0. Needs the container engine and node image
(`make bench`).
"""

from __future__ import annotations

import os
import random
import sys
import time

import docker

from orbis.providers.base import LABEL_INFRASTRUCTURE, LABEL_RUNNER
from orbis.testing.server import orbis_server

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
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
                  - ansible.builtin.copy: {dest: /root/step1, content: "1"}
                  - ansible.builtin.command: sleep 1
                  - ansible.builtin.copy: {dest: /root/step2, content: "2"}
"""


def phase_of(detail: dict) -> str:
    """Which part of the deployment a kill now would hit."""
    nodes = detail["nodes"]
    if detail["phase"] == "done" and detail["state"] == "configured":
        return "finished"
    if any(n["current_step"] or any(s["status"] != "pending" for s in n["steps"]) for n in nodes):
        return "Ansible"
    if nodes and all(n["private_ip"] for n in nodes):
        return "SSH wait"
    return "provisioning"


def one(engine: docker.DockerClient, kill_after: float) -> tuple[bool, int, int, float, str]:
    with orbis_server(os.environ.get("DOCKER_HOST")) as server, server.client() as client:
        answer = client.post("/infrastructures", params={"async": "yes"}, content=TEMPLATE,
                             headers={"Content-Type": "text/yaml"})  # fmt: skip
        infra_id = answer.text.rsplit("/", 1)[-1]
        time.sleep(kill_after)
        phase = phase_of(client.get(f"/orbis/infrastructures/{infra_id}").json())
        server.kill()
        t0 = time.time()
        server.start()
        deadline = time.time() + 180
        while time.time() < deadline:
            detail = client.get(f"/orbis/infrastructures/{infra_id}").json()
            if detail["reconciled"] >= detail["generation"] and detail["phase"] == "done":
                break
            time.sleep(0.2)
        resumed = time.time() - t0
        label = {"label": f"{LABEL_INFRASTRUCTURE}={infra_id}"}
        nodes = [c for c in engine.containers.list(all=True, filters=label)
                 if LABEL_RUNNER not in c.labels]  # the recipe runner is no node  # fmt: skip
        duplicates = max(0, len(nodes) - 3)
        ok = detail["state"] == "configured"
        client.delete(f"/infrastructures/{infra_id}")
        orphans = len(engine.containers.list(all=True, filters=label))
        orphans += len(engine.networks.list(filters=label))
        return ok, duplicates, orphans, resumed, phase


def main() -> None:
    points = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    engine = docker.DockerClient(base_url=os.environ["DOCKER_HOST"])
    rng = random.Random(2026)
    results = []
    for _ in range(points):
        kill_after = rng.uniform(0.0, 7.0)
        ok, dup, orphans, resumed, phase = one(engine, kill_after)
        results.append((ok, dup, orphans, phase))
        outcome = "configured" if ok else "NOT configured"
        print(f"  kill at {kill_after:4.1f} s ({phase:12}): {outcome:14} duplicates {dup}  "
              f"orphans {orphans}  finished {resumed:4.1f} s after restart")  # fmt: skip
    for phase in ("provisioning", "SSH wait", "Ansible", "finished"):
        hit = [r for r in results if r[3] == phase]
        print(f"  {phase:12}: {len(hit):2} kills, {sum(1 for r in hit if r[0])} configured")
    counted = [r for r in results if r[3] != "finished"]
    good = sum(1 for r in counted if r[0])
    print(f"kills before the end: {len(counted)}/{points}; of those reached configured: "
          f"{good}/{len(counted)}; duplicates: {sum(r[1] for r in results)}; "
          f"orphans: {sum(r[2] for r in results)}")  # fmt: skip
    if good < len(counted) or any(r[1] or r[2] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
