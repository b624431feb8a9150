"""Deploy time on the local back-end, for 1 and 5 nodes (median of 3 runs each).

Prints seconds from the create request to "configured", split into launch (last node running),
SSH ready (all nodes answering) and Ansible (configuration), plus the destroy time.
Needs the container engine and the node image: run it with `make bench`.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from datetime import datetime

import httpx

from orbis.testing.server import orbis_server

PLAYBOOK = """
- name: small configuration
  hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        dest: /root/hello.txt
        content: "configured by orbis\\n"
    - ansible.builtin.command: cat /root/hello.txt
"""


def template(nodes: int) -> str:
    body = "\n".join("              " + line for line in PLAYBOOK.strip().splitlines())
    return f"""tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    node:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties:
            count: {nodes}
      interfaces:
        Standard:
          configure:
            implementation: |
{body}
"""


def parse(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def one_run(client: httpx.Client, nodes: int) -> dict[str, float]:
    t0 = time.time()
    answer = client.post(
        "/infrastructures",
        params={"async": "yes"},
        content=template(nodes),
        headers={"Content-Type": "text/yaml", "Accept": "application/json"},
    )
    answer.raise_for_status()
    infra_id = answer.json()["uri"].rsplit("/", 1)[-1]
    while True:
        detail = client.get(f"/orbis/infrastructures/{infra_id}").json()
        if detail["phase"] == "done":
            break
        time.sleep(0.05)
    total = time.time() - t0
    if detail["state"] != "configured":
        sys.exit(f"deployment ended {detail['state']}: see the server log")
    events = client.get(f"/orbis/infrastructures/{infra_id}/events").json()["events"]
    running = max(parse(e["at"]) for e in events if e["subject"] == "node" and e["to"] == "running")
    configuring = next(parse(e["at"]) for e in events if e["to"] == "configuring")
    t1 = time.time()
    client.delete(f"/infrastructures/{infra_id}").raise_for_status()
    return {
        "total": total,
        "launch": running - t0,
        "ssh": configuring - running,
        "ansible": t0 + total - configuring,
        "destroy": time.time() - t1,
    }


def main() -> None:
    with orbis_server(os.environ.get("DOCKER_HOST"), user="bench") as server:
        client = server.client()
        one_run(client, 1)  # warm-up: first container start and Ansible start are slower
        print(f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}")
        print(f"{'nodes':>5} {'total s':>8} {'launch':>7} {'ssh':>6} {'ansible':>8} {'destroy':>8}")
        for nodes in (1, 5):
            runs = [one_run(client, nodes) for _ in range(3)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(
                f"{nodes:>5} {med['total']:>8.2f} {med['launch']:>7.2f} {med['ssh']:>6.2f} "
                f"{med['ansible']:>8.2f} {med['destroy']:>8.2f}"
            )
        print("median of 3 runs; targets: 1 node <= 5 s, 5 nodes <= 10 s")


if __name__ == "__main__":
    main()
