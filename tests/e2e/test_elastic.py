"""An elastic Slurm cluster on the local back-end (examples/elastic-slurm.yaml): jobs sent
with sbatch through `orbis ssh` to a cluster with no worker make the monitor power workers on
(the second pool once the first is at its max: the burst), they join Slurm as dynamic nodes
and run the jobs; once idle past idle_time they are powered off, Slurm forgets them and no
container of them is left. One cluster for the whole module (docs/elastic.md)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from orbis.providers.base import LABEL_INFRASTRUCTURE
from orbis.testing.server import RunningServer, orbis_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "elastic-slurm.yaml"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
IDLE = 10  # idle_time of the test cluster (seconds)


def wait_for(check: Any, timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def containers(engine_url: str, infra_id: str) -> list[str]:
    client = docker.DockerClient(base_url=engine_url)
    label = f"{LABEL_INFRASTRUCTURE}={infra_id}"
    return sorted(c.name for c in client.containers.list(all=True, filters={"label": label}))


class Cluster:
    def __init__(self, server: RunningServer, infra_id: str) -> None:
        self.server, self.id = server, infra_id

    def on_front(self, command: str) -> str:
        done = self.server.cli("ssh", self.id, "front", "--", "sh", "-c", command, timeout=120)
        return done.stdout + done.stderr

    def elastic(self) -> dict[str, Any]:
        done = self.server.cli("elastic", self.id, "--json")
        assert done.returncode == 0, done.stderr
        view: dict[str, Any] = json.loads(done.stdout)
        return view

    def workers(self) -> list[dict[str, Any]]:
        with self.server.client() as client:
            nodes = client.get(f"/orbis/infrastructures/{self.id}").json()["nodes"]
        return [n for n in nodes if n["name"] != "front"]

    def job_state(self, job: str) -> dict[str, str]:
        line = self.on_front(f"scontrol -o show job {job}")
        return dict(re.findall(r"(JobState|NodeList|Reason)=(\S+)", line))


@pytest.fixture(scope="module")
def cluster(engine_url: str) -> Iterator[Cluster]:
    with orbis_server(engine_url) as server:
        started = time.monotonic()
        done = server.cli("deploy", str(EXAMPLE), "-i", f"idle_time={IDLE}",
                          "-i", "wn_max_site_a=1", "-i", "wn_max_site_b=1")  # fmt: skip
        found = UUID.search(done.stdout)
        assert found and done.returncode == 0, done.stdout + done.stderr
        print(f"\nfront-end configured in {time.monotonic() - started:.1f} s")
        yield Cluster(server, found.group(0))
        destroyed = server.cli("destroy", found.group(0))
        assert destroyed.returncode == 0, destroyed.stderr
        assert containers(engine_url, found.group(0)) == []


def test_jobs_power_workers_on_which_run_them_then_idle_ones_go(cluster, engine_url):
    assert cluster.workers() == []  # an empty cluster: count 0 on both pools
    submitted = time.monotonic()
    out = cluster.on_front(
        "cd /tmp && sbatch --wrap 'hostname; sleep 3' && sbatch --wrap 'hostname; sleep 3' && "
        "sbatch -c 4 --wrap 'echo too big'"  # no worker has 4 CPUs: reported, not looped on
    )
    *jobs, big = re.findall(r"Submitted batch job (\d+)", out)
    assert len(jobs) == 2, out
    # both jobs run, each on a worker powered on for it: one per pool, wn_a's max being 1
    running = wait_for(
        lambda: all(
            cluster.job_state(j).get("JobState") in ("RUNNING", "COMPLETING", "COMPLETED")
            for j in jobs
        ),
        timeout=240,
    )
    assert running, cluster.on_front("scontrol -o show jobs; scontrol -o show nodes")
    print(f"sbatch → both jobs running on new workers: {time.monotonic() - submitted:.1f} s")
    done = wait_for(lambda: all(cluster.job_state(j).get("JobState") == "COMPLETED"
                                for j in jobs), timeout=60)  # fmt: skip
    assert done, cluster.on_front("scontrol -o show jobs")
    idle_from = time.monotonic()
    # a crash of the server while the workers idle: its monitor resumes from the store (the
    # workers' idle times, the decisions said) once the dead server's leases expire
    cluster.server.kill()
    cluster.server.start()
    ran_on = sorted(cluster.job_state(j)["NodeList"] for j in jobs)
    workers = cluster.workers()
    assert sorted(w["name"] for w in workers) == ["wn_a", "wn_b"], workers
    names = {f"{w['name'].replace('_', '-')}-{w['vm_id']}" for w in workers}  # host names
    assert set(ran_on) <= names, (ran_on, names)  # the first to join may run both
    view = cluster.elastic()
    ons = [d["reason"] for d in view["decisions"] if d["action"] == "power_on"]
    assert any(
        r.startswith("2 jobs pending need 2 CPUs; powering on a worker on wn_a") for r in ons
    ), view["decisions"]
    assert any("powering on a worker on wn_b (wn_a at max 1)" in r for r in ons), ons
    assert len(ons) == 2, ons  # nothing for the job no worker can run:
    too_big = [d["reason"] for d in view["decisions"] if d["action"] == "unsatisfiable"]
    assert too_big == [
        f"job {big} asks for 4 CPUs per node; no worker has more than 1 CPUs: "
        "it cannot run on this cluster"
    ], view["decisions"]  # said once
    assert cluster.job_state(big)["JobState"] == "PENDING"
    cluster.on_front(f"scancel {big}")

    # idle past idle_time: powered off, forgotten by Slurm, containers gone
    gone = wait_for(lambda: cluster.workers() == [], timeout=IDLE + 120)
    assert gone, cluster.elastic()
    print(f"jobs done → workers removed: {time.monotonic() - idle_from:.1f} s (idle_time {IDLE} s)")
    offs = [d["reason"] for d in cluster.elastic()["decisions"] if d["action"] == "power_off"]
    decisions = cluster.elastic()["decisions"]
    assert [d["action"] for d in decisions].count("power_on") == 2  # remembered across the crash
    assert len(offs) == 2 and all(re.search(rf"idle \d+ s > {IDLE} s: powering off", r)
                                  for r in offs), offs  # fmt: skip
    assert len(containers(engine_url, cluster.id)) == 1  # the front-end only
    forgotten = wait_for(lambda: "No nodes" in cluster.on_front("scontrol -o show nodes"),
                         timeout=30)  # fmt: skip
    assert forgotten, cluster.on_front("scontrol -o show nodes")
