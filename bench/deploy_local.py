"""Deploy time on the local back-end, for 1, 5 and 20 nodes (median of 3 runs; 2 for 20).

Simulates nothing: real containers, SSH and Ansible (one small play of two tasks per node).
Prints seconds from the create request to "configured", split into launch (last node running),
SSH ready (all nodes answering) and Ansible (configuration, in the recipe runner container),
plus the destroy time, and failed deployments (the bench stops at the first).

It also prints the CPU seconds each deployment cost, which on a machine shared with other work
are steadier than the wall times: the nodes' and the runner's containers (their cgroups, read
while they live), the Orbis server process, and the engine's service process (with the runc
and network plugin processes it waited for), for the deploy and for the destroy.

  --sizes 1,5,20   node counts (default 1,5,20); --runs 3,3,2 runs of each (default)
  --b-tree PATH    A/B: measure the same sizes with the Orbis of another checkout (its src/,
                   e.g. /work/main), alternated run by run with this one (A B B A ...) in the
                   same minutes, and print the ratios A/B
  --a-env K=V, --b-env K=V   environment of side A or B's server (e.g. ORBIS_NODE_IMAGE=...)
  --compare-host   measure again with recipes run on the host (ORBIS_UNSAFE_RECIPES_ON_HOST=1,
                   the baseline without the runner) and print the runner's cost
  --compare-strategy   measure again with ORBIS_MITOGEN_MIN_HOSTS=off (Ansible's own strategy
                   at every size, the baseline before Mitogen) and print the ratios
Needs the container engine and the node and runner images: run it with `make bench`.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

from orbis.testing.server import RunningServer, orbis_server

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
SIZES = ((1, 3), (5, 3), (20, 2))  # (nodes, runs)
TARGETS = {1: 3.0, 5: 6.0, 20: 10.0}  # seconds to configured; 20 nodes also destroy <= 2 s
CGROUPS = "/sys/fs/cgroup/cpuacct/libpod_parent/libpod-*/cpuacct.usage"  # podman, cgroup v1
CONTAINERS_JSON = "/var/lib/containers/storage/overlay-containers/containers.json"
TICK = os.sysconf("SC_CLK_TCK")


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


def process_cpu(pid: int | None) -> float:
    """CPU seconds of a process and of the children it waited for (0 if unknown)."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / TICK  # utime stime cutime cstime


def engine_pid() -> int | None:
    """The podman service of scripts/engine.sh (this checkout's), if that is the engine."""
    home = os.environ.get("ORBIS_HOME") or str(Path(__file__).resolve().parents[1] / ".orbis")
    try:
        return int(Path(home, "run", "podman.pid").read_text().strip())
    except (OSError, ValueError):
        return None


class ContainerCpu:
    """CPU seconds of every podman container while it lives (read from its cgroup every
    0.2 s: what a container spends in its last fraction of a second is not seen), by name."""

    def __init__(self) -> None:
        self.usage: dict[str, float] = {}  # container id -> CPU seconds last seen
        self.names: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self.available = bool(glob.glob(CGROUPS)) or os.path.exists(CONTAINERS_JSON)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            for path in glob.glob(CGROUPS):
                cid = path.rsplit("libpod-", 1)[1].split("/", 1)[0]
                try:
                    self.usage[cid] = int(Path(path).read_text()) / 1e9
                except (OSError, ValueError):
                    continue
                if cid not in self.names:
                    self._read_names()

    def _read_names(self) -> None:
        try:
            for entry in json.loads(Path(CONTAINERS_JSON).read_text()):
                self.names.setdefault(entry["id"], (entry.get("names") or [""])[0])
        except (OSError, ValueError, KeyError):
            pass

    def of(self, infra_id: str) -> tuple[float, float]:
        """(nodes, runner) CPU seconds of an infrastructure's containers."""
        self._read_names()
        nodes = runner = 0.0
        for cid, used in self.usage.items():
            name = self.names.get(cid, "")
            if name == f"orbis-{infra_id}-runner":
                runner += used
            elif name.startswith(f"orbis-{infra_id}-"):
                nodes += used
        return nodes, runner

    def close(self) -> None:
        self._stop.set()


class Side:
    """One Orbis server under measurement (a checkout's code, an environment)."""

    def __init__(self, name: str, server: RunningServer) -> None:
        self.name = name
        self.server = server
        self.client = server.client()
        self.runs: dict[int, list[dict[str, float]]] = {}


def one_run(side: Side, nodes: int, meter: ContainerCpu) -> dict[str, float]:
    assert side.server.proc is not None
    client, pid, engine = side.client, side.server.proc.pid, engine_pid()
    cpu0 = process_cpu(pid), process_cpu(engine)
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
        time.sleep(0.25)  # the end is read from the events: polling often only costs CPU
    if detail["state"] != "configured":
        errors = [f"{n.get('name')}: {n.get('error') or n.get('message')}"
                  for n in detail.get("nodes", [])]  # fmt: skip
        log = (side.server.home / "server.log").read_text()[-3000:]
        sys.exit(f"{side.name}: deployment ended {detail['state']}: {errors}\n{log}")
    cpu1 = process_cpu(pid), process_cpu(engine)
    events = client.get(f"/orbis/infrastructures/{infra_id}/events").json()["events"]
    running = max(parse(e["at"]) for e in events if e["subject"] == "node" and e["to"] == "running")
    configuring = next(parse(e["at"]) for e in events if e["to"] == "configuring")
    total = max(parse(e["at"]) for e in events
                if e["subject"] == "infrastructure" and e["to"] == "done") - t0  # fmt: skip
    t1 = time.time()
    client.delete(f"/infrastructures/{infra_id}").raise_for_status()
    destroy = time.time() - t1
    cpu2 = process_cpu(pid), process_cpu(engine)
    node_cpu, runner_cpu = meter.of(infra_id)
    return {
        "total": total,
        "launch": running - t0,
        "ssh": configuring - running,
        "ansible": t0 + total - configuring,
        "destroy": destroy,
        "cpu_nodes": node_cpu,
        "cpu_runner": runner_cpu,
        "cpu_server": cpu1[0] - cpu0[0],
        "cpu_engine": cpu1[1] - cpu0[1],
        "cpu_destroy": (cpu2[0] - cpu1[0]) + (cpu2[1] - cpu1[1]),
    }


HEADER = (f"{'nodes':>5} {'total s':>8} {'launch':>7} {'ssh':>6} {'ansible':>8} {'destroy':>8}"
          f" {'target':>7} | CPU s: {'nodes':>6} {'runner':>6} {'server':>6} {'engine':>6}"
          f" {'deploy':>6} {'destroy':>7}")  # fmt: skip


def deploy_cpu(med: dict[str, float]) -> float:
    return med["cpu_nodes"] + med["cpu_runner"] + med["cpu_server"] + med["cpu_engine"]


def row(nodes: int, med: dict[str, float]) -> str:
    return (f"{nodes:>5} {med['total']:>8.2f} {med['launch']:>7.2f} {med['ssh']:>6.2f} "
            f"{med['ansible']:>8.2f} {med['destroy']:>8.2f} {TARGETS.get(nodes, 0):>6.0f}s |"
            f"        {med['cpu_nodes']:>6.2f} {med['cpu_runner']:>6.2f} {med['cpu_server']:>6.2f}"
            f" {med['cpu_engine']:>6.2f} {deploy_cpu(med):>6.2f} {med['cpu_destroy']:>7.2f}")


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def measure(sides: list[Side], sizes: list[tuple[int, int]], meter: ContainerCpu
            ) -> None:  # fmt: skip
    """Every size, run by run, the sides alternated (A B, then B A, ...)."""
    for side in sides:  # warm-up: first container start and Ansible start are slower
        one_run(side, 1, meter)
    turn = 0
    for nodes, count in sizes:
        for _ in range(count):
            order = sides if turn % 2 == 0 else sides[::-1]
            turn += 1
            for side in order:
                side.runs.setdefault(nodes, []).append(one_run(side, nodes, meter))
        for side in sides:
            print(f"{side.name:<3}" + row(nodes, medians(side.runs[nodes]))[3:], flush=True)


def env_pairs(pairs: list[str]) -> dict[str, str]:
    return dict(p.split("=", 1) for p in pairs)


def start_side(stack: ExitStack, name: str, env: dict[str, str], tree: str | None) -> Side:
    env = dict(env)
    if tree:  # that checkout's code, ahead of this one's editable install
        env["PYTHONPATH"] = str(Path(tree, "src"))
    server = stack.enter_context(orbis_server(os.environ.get("DOCKER_HOST"), user="bench",
                                              env=env))  # fmt: skip
    return Side(name, server)


def run_compare(args: argparse.Namespace, sizes: list[tuple[int, int]],
                meter: ContainerCpu) -> dict[int, dict[str, float]]:  # fmt: skip
    """Side A (and B if asked), alternated; A's medians."""
    with ExitStack() as stack:
        sides = [start_side(stack, "A", env_pairs(args.a_env), None)]
        if args.b_tree or args.b_env:
            sides.append(start_side(stack, "B", env_pairs(args.b_env), args.b_tree))
            print(f"A: this checkout {env_pairs(args.a_env) or ''}; B: "
                  f"{args.b_tree or 'this checkout'} {env_pairs(args.b_env) or ''}; "
                  "alternated run by run")  # fmt: skip
        print(HEADER)
        measure(sides, sizes, meter)
        if len(sides) == 2:
            a, b = sides
            for nodes, _ in sizes:
                ma, mb = medians(a.runs[nodes]), medians(b.runs[nodes])
                print(f"A/B {nodes:>2} node(s): total {ma['total']:.2f} / {mb['total']:.2f} s "
                      f"({ma['total'] / mb['total']:.2f}x), destroy {ma['destroy']:.2f} / "
                      f"{mb['destroy']:.2f} s ({ma['destroy'] / mb['destroy']:.2f}x), deploy CPU "
                      f"{deploy_cpu(ma):.2f} / {deploy_cpu(mb):.2f} s "
                      f"({deploy_cpu(ma) / max(deploy_cpu(mb), 1e-9):.2f}x)")  # fmt: skip
        return {nodes: medians(sides[0].runs[nodes]) for nodes, _ in sizes}


def measure_plain(sizes: list[tuple[int, int]], meter: ContainerCpu, title: str,
                  env: dict[str, str] | None = None) -> dict[int, dict[str, float]]:  # fmt: skip
    with orbis_server(os.environ.get("DOCKER_HOST"), user="bench", env=env) as server:
        side = Side("", server)
        print(title)
        print(HEADER)
        measure([side], sizes, meter)
        return {nodes: medians(side.runs[nodes]) for nodes, _ in sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])  # fmt: skip
    parser.add_argument("--sizes", default=",".join(str(n) for n, _ in SIZES))
    parser.add_argument("--runs", default=",".join(str(r) for _, r in SIZES))
    parser.add_argument("--b-tree")
    parser.add_argument("--a-env", action="append", default=[])
    parser.add_argument("--b-env", action="append", default=[])
    parser.add_argument("--compare-host", action="store_true")
    parser.add_argument("--compare-strategy", action="store_true")
    args = parser.parse_args()
    counts = [int(r) for r in args.runs.split(",")]
    nodes = [int(n) for n in args.sizes.split(",")]
    sizes = [(n, counts[min(i, len(counts) - 1)]) for i, n in enumerate(nodes)]
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"load average at start: {os.getloadavg()[0]:.1f} (other work on the machine)")
    meter = ContainerCpu()
    if not meter.available:
        print("(no podman cgroups here: the containers' CPU reads 0)")
    ours = run_compare(args, sizes, meter)  # the default settings: the baselines' other side
    print("medians; 0 failed deployments (a failure stops the bench)")
    if args.compare_strategy:
        runner = ours
        plain = measure_plain(sizes, meter, "Ansible's own strategy at every size",
                              env={"ORBIS_MITOGEN_MIN_HOSTS": "off"})  # fmt: skip
        for n, _ in sizes:
            a, b = runner[n], plain[n]
            print(f"Mitogen from 8 hosts, {n:>2} node(s): {a['total']:.2f} s against "
                  f"{b['total']:.2f} s ({a['total'] / b['total']:.2f}x), Ansible "
                  f"{a['ansible']:.2f} s against {b['ansible']:.2f} s "
                  f"({a['ansible'] / b['ansible']:.2f}x)")
    if args.compare_host:
        runner = ours
        host = measure_plain(sizes, meter, "recipes on the host (baseline)",
                             env={"ORBIS_UNSAFE_RECIPES_ON_HOST": "1"})  # fmt: skip
        for n, _ in sizes:
            there, here = runner[n]["total"], host[n]["total"]
            print(f"runner's cost, {n:>2} node(s): {there - here:+.2f} s "
                  f"({there / here:.2f}x the time on the host)")  # fmt: skip
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    meter.close()


if __name__ == "__main__":
    main()
