"""Scale on the simulated cloud: one infrastructure of 1,000 nodes, and reads with 100 × 100.

SIMULATED: nodes are rows of a simulated cloud (providers/sim.py) with a fixed launch latency,
and their configuration is simulated too (no SSH, no Ansible: a fixed delay per node). This
measures the orchestration (engine, store, API), not real deployments; bench/deploy_local.py
measures those.

Prints: seconds from the create request to all nodes running and to "configured", the
orchestration overhead beyond the launch latency, the server's peak memory, and list/state
latencies (p50/p99) with 100 infrastructures of 100 nodes stored. Targets: < 10 s overhead,
< 500 MB. Run: `.venv/bin/python bench/scale_sim.py` (no containers needed).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx

from orbis.auth import identify
from orbis.store.repository import Store
from orbis.testing.server import RunningServer, orbis_server

LATENCY = 0.05
NODES = 1000


def template(count: int) -> str:
    return f"""tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - indigo: https://raw.githubusercontent.com/indigo-dc/tosca-types/master/custom_types.yaml
topology_template:
  node_templates:
    wn:
      type: tosca.nodes.indigo.Compute
      capabilities:
        scalable: {{properties: {{count: {count}}}}}
      interfaces:
        Standard:
          configure:
            implementation: |
              - hosts: all
                tasks:
                  - ansible.builtin.ping:
"""


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def deploy_big(server: RunningServer) -> None:
    with server.client() as client:
        t0 = time.time()
        answer = client.post(
            "/infrastructures",
            params={"async": "yes"},
            content=template(NODES),
            headers={"Content-Type": "text/yaml"},
        )
        answer.raise_for_status()
        infra_id = answer.text.rsplit("/", 1)[-1]
        while client.get(f"/orbis/infrastructures/{infra_id}").json()["phase"] != "done":
            time.sleep(0.2)
        done = time.time() - t0
        events = client.get(f"/orbis/infrastructures/{infra_id}/events").json()["events"]
        running = max(ts(e["at"]) for e in events if e["to"] == "running") - t0
        detail = client.get(f"/orbis/infrastructures/{infra_id}").json()
        configured = sum(1 for n in detail["nodes"] if n["state"] == "configured")
        assert server.proc is not None
        print("SIMULATED cloud and configuration (no containers, SSH or Ansible)")
        print(f"{NODES} nodes, {LATENCY * 1000:.0f} ms launch latency, "
              f"{os.environ['ORBIS_PARALLEL_LAUNCHES']} launches at once")  # fmt: skip
        print(f"  all running after   {running:6.2f} s  (overhead beyond the latency: "
              f"{running - LATENCY:.2f} s)")  # fmt: skip
        print(f"  configured after    {done:6.2f} s  ({configured}/{NODES} configured)")
        print(f"  server peak memory  {peak_rss_mb(server.proc.pid):6.0f} MB")
        t1 = time.time()
        client.delete(f"/infrastructures/{infra_id}").raise_for_status()
        print(f"  destroy             {time.time() - t1:6.2f} s")


def fill_store(home: Path, infras: int, nodes: int, auth: str) -> None:
    who = identify(auth)[0]
    store = Store(f"sqlite:///{home / 'orbis.db'}")
    for _ in range(infras):
        infra_id = str(uuid.uuid1())
        store.create_infrastructure(id=infra_id, owner_key=who.key, owner_name=who.name,
                                    template=template(nodes), phase="done", generation=1,
                                    reconciled=1)  # fmt: skip
        store.add_owners(infra_id, who.owners())
        with store.session() as s:
            from orbis.store.schema import NodeRow

            s.add_all(NodeRow(infrastructure_id=infra_id, vm_id=i, name="wn", state="configured",
                              needs_config=False, private_ip=f"10.0.{i // 250}.{i % 250}")
                      for i in range(nodes))  # fmt: skip


def latencies(client: httpx.Client, path: str, n: int = 200) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        client.get(path).raise_for_status()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    os.environ.update({"ORBIS_PROVIDER": "sim", "ORBIS_SIM_LATENCY": str(LATENCY),
                       "ORBIS_SIM_CONFIG_SECONDS": "0.5"})  # fmt: skip
    os.environ.setdefault("ORBIS_PARALLEL_LAUNCHES", "64")
    with orbis_server(user="bench") as server:
        deploy_big(server)
    with orbis_server(user="bench") as server:
        server.stop()
        fill_store(server.home, 100, 100, server.auth_file.read_text())
        server.start()
        with server.client() as client:
            ids = client.get("/infrastructures").text.split()
            assert len(ids) == 100, len(ids)
            one = ids[0].rsplit("/", 1)[-1]
            for name, path in (("list", "/infrastructures"),
                               ("state", f"/infrastructures/{one}/state")):  # fmt: skip
                p50, p99 = latencies(client, path)
                print(f"100 infrastructures x 100 nodes: {name:5} p50 {p50:5.1f} ms, "
                      f"p99 {p99:5.1f} ms (sequential, loopback)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
