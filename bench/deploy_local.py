"""Deploy time on the local back-end, for 1, 5 and 20 nodes (median of 3 runs; 2 for 20).

Simulates nothing: real containers, SSH and Ansible (one small play of two tasks per node).
Prints seconds from the create request to "configured", split into launch (last node running),
SSH ready (all nodes answering) and Ansible (configuration, in the recipe runner container),
plus the destroy time, and failed deployments (the bench stops at the first).
With --compare-host it measures again with recipes run on the host
(ORBIS_UNSAFE_RECIPES_ON_HOST=1, the baseline without the runner) and prints the runner's cost.
With --compare-strategy it measures again with ORBIS_MITOGEN_MIN_HOSTS=off (Ansible's own
strategy at every size, the baseline before Mitogen) and prints the ratios.
Needs the container engine and the node and runner images: run it with `make bench`.
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


SIZES = ((1, 3), (5, 3), (20, 2))  # (nodes, runs)
TARGETS = {1: 3.0, 5: 6.0, 20: 10.0}  # seconds to configured; 20 nodes also destroy <= 2 s


def measure(on_host: bool = False, env: dict[str, str] | None = None,
            title: str = "recipes in the runner") -> dict[int, dict[str, float]]:  # fmt: skip
    with orbis_server(os.environ.get("DOCKER_HOST"), user="bench") as server:
        if on_host or env:
            if on_host:
                server.env["ORBIS_UNSAFE_RECIPES_ON_HOST"] = "1"
            server.env.update(env or {})
            server.stop()
            server.start()
        client = server.client()
        one_run(client, 1)  # warm-up: first container start and Ansible start are slower
        print(title)
        print(f"{'nodes':>5} {'total s':>8} {'launch':>7} {'ssh':>6} {'ansible':>8} {'destroy':>8}"
              f" {'target':>7}")  # fmt: skip
        medians = {}
        for nodes, count in SIZES:
            runs = [one_run(client, nodes) for _ in range(count)]
            med = medians[nodes] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(
                f"{nodes:>5} {med['total']:>8.2f} {med['launch']:>7.2f} {med['ssh']:>6.2f} "
                f"{med['ansible']:>8.2f} {med['destroy']:>8.2f} {TARGETS[nodes]:>6.0f}s"
            )
        return medians


def main() -> None:
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"load average at start: {os.getloadavg()[0]:.1f} (other work on the machine)")
    runner = measure()
    print("median of 3 runs (2 for 20 nodes); 0 failed deployments (a failure stops the bench)")
    if "--compare-strategy" in sys.argv:
        plain = measure(env={"ORBIS_MITOGEN_MIN_HOSTS": "off"},
                        title="Ansible's own strategy at every size (baseline before Mitogen)")
        for nodes, _ in SIZES:
            ours, base = runner[nodes], plain[nodes]
            print(f"Mitogen from 8 hosts, {nodes:>2} node(s): {ours['total']:.2f} s against "
                  f"{base['total']:.2f} s ({ours['total'] / base['total']:.2f}x), Ansible "
                  f"{ours['ansible']:.2f} s against {base['ansible']:.2f} s "
                  f"({ours['ansible'] / base['ansible']:.2f}x)")
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
    if "--compare-host" in sys.argv:
        host = measure(on_host=True, title="recipes on the host (baseline)")
        for nodes, _ in SIZES:
            ours, base = runner[nodes]["total"], host[nodes]["total"]
            print(f"runner's cost, {nodes:>2} node(s): {ours - base:+.2f} s "
                  f"({ours / base:.2f}x the time on the host)")  # fmt: skip


if __name__ == "__main__":
    main()
