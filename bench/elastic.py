"""Elastic Slurm cluster on the local back-end (examples/elastic-slurm.yaml): real containers,
Slurm, SSH and Ansible.

Prints
- sbatch → running on a newly powered-on worker (Slurm's own SubmitTime/StartTime of the job,
  1 s resolution; the cluster has no worker when the job is sent), against the same job sent
  while a worker is up (baseline: what Slurm alone takes);
- idle → powered off: seconds from the job's end until the worker is gone, minus idle_time
  (the monitor's poll, the drain and the container's removal);
- the monitor's cost per cycle: its read of Slurm over SSH (one command on the connection it
  keeps, as the monitor records it), against a bare SSH `true` to the front-end on a new
  connection each time (asyncssh), and the policy's CPU time for a large queue.
Needs the container engine and the node and runner images: run it with `make bench`.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from orbis.configure.ssh import run_command
from orbis.elastic.policy import History, Worker, decide
from orbis.elastic.slurm import SlurmJob
from orbis.model.elastic import ElasticCluster, Knobs, WorkerPool
from orbis.testing.server import RunningServer, orbis_server

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "elastic-slurm.yaml"
IDLE = 5


def stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class Front:
    def __init__(self, server: RunningServer, infra_id: str) -> None:
        with server.client() as client:
            nodes = client.get(f"/orbis/infrastructures/{infra_id}").json()["nodes"]
            vm = next(n["vm_id"] for n in nodes if n["name"] == "front")
            self.login = client.get(f"/orbis/infrastructures/{infra_id}/vms/{vm}/login").json()
        self.server, self.id = server, infra_id

    def run(self, command: str) -> str:
        return asyncio.run(self.arun(command))[1]

    async def arun(self, command: str) -> tuple[int, str]:
        return await run_command(self.login["address"], command, user=self.login["user"],
                                 private_key=self.login["private_key"],
                                 port=self.login["port"])  # fmt: skip

    def job(self, job: str) -> dict[str, str]:
        return dict(re.findall(r"(\w+)=(\S+)", self.run(f"scontrol -o show job {job}")))

    def wait_job(self, job: str, state: str, timeout: float) -> dict[str, str]:
        """The job once it is in `state` or past it (RUNNING: started, whatever came after)."""
        states = {"RUNNING", "COMPLETING", "COMPLETED"} if state == "RUNNING" else {state}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.job(job)
            if found.get("JobState") in states:
                return found
            time.sleep(1)
        raise SystemExit(f"job {job} not {state} after {timeout} s: {found}")

    def submit(self, seconds: int) -> str:
        out = self.run(f"cd /tmp && sbatch --wrap 'sleep {seconds}'")
        found = re.search(r"Submitted batch job (\d+)", out)
        if not found:
            raise SystemExit(f"sbatch failed: {out}")
        return found.group(1)

    def workers(self) -> list[dict[str, Any]]:
        with self.server.client() as client:
            nodes = client.get(f"/orbis/infrastructures/{self.id}").json()["nodes"]
        return [n for n in nodes if n["name"] != "front"]

    def timeline(self, since: float) -> list[tuple[float, str]]:
        """Seconds after `since` of the worker's events and the monitor's decisions."""
        with self.server.client() as client:
            events = client.get(f"/orbis/infrastructures/{self.id}/events").json()["events"]
        out = []
        for e in events:
            at = datetime.fromisoformat(e["at"]).timestamp() - since
            if at >= -1 and (e["subject"] == "elastic" or e["name"] != "front"):
                out.append((round(at, 1), f"{e['subject']} {e['name']} → {e['to']} "
                                          f"{e['message'][:60]}"))  # fmt: skip
        return out

    def elastic(self) -> dict[str, Any]:
        with self.server.client() as client:
            view: dict[str, Any] = client.get(f"/orbis/infrastructures/{self.id}/elastic").json()
            return view


def policy_cost() -> float:
    """Milliseconds of CPU per decide() with 200 workers and 2,000 pending jobs."""
    pools = [WorkerPool("a", 0, 150, 4, 8000), WorkerPool("b", 0, 150, 4, 8000)]
    cluster = ElasticCluster("ec", "slurm", "front", pools, Knobs())
    workers = [Worker(i, "a" if i % 2 else "b", f"w{i}", "configured", 900.0,
                      "busy" if i % 3 else "idle", i % 4, 0.0) for i in range(200)]  # fmt: skip
    jobs = [SlurmJob(str(i), "PENDING", 1 + i % 4, 1, 0, "debug", "Resources")
            for i in range(2000)]  # fmt: skip
    started = time.process_time()
    for _ in range(10):
        decide(cluster, workers, jobs, [], History())
    return (time.process_time() - started) / 10 * 1000


def main() -> None:
    results: dict[str, Any] = {"policy_ms_200_workers_2000_jobs": round(policy_cost(), 1)}
    with orbis_server() as server:
        done = server.cli("deploy", str(EXAMPLE), "-i", f"idle_time={IDLE}",
                          "-i", "wn_max_site_a=1", "-i", "wn_max_site_b=0")  # fmt: skip
        found = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                          done.stdout)  # fmt: skip
        if done.returncode != 0 or not found:
            raise SystemExit(done.stdout + done.stderr)
        front = Front(server, found.group(0))
        try:
            # cold: no worker; the job waits for one to be powered on, configured and joined
            cold = front.wait_job(front.submit(20), "RUNNING", 600)
            # warm: the same job while that worker is up and has a free CPU? it has 1 CPU,
            # so wait for the first to end, then send another at once
            timeline = front.timeline(stamp(cold["SubmitTime"]))
            first_end = front.wait_job(cold["JobId"], "COMPLETED", 120)
            warm = front.wait_job(front.submit(1), "RUNNING", 60)
            last = front.wait_job(warm["JobId"], "COMPLETED", 60)
            ended = stamp(last["EndTime"])
            while front.workers():
                if time.time() - ended > IDLE + 300:
                    raise SystemExit("the idle worker was not powered off")
                time.sleep(0.5)
            off_after = time.time() - ended - IDLE
            reads = []
            for _ in range(10):
                reads.append(front.elastic().get("view", {}).get("read_seconds", 0.0))
                time.sleep(1.1)
            bare = []
            for _ in range(10):
                started = time.monotonic()
                front.run("true")
                bare.append(time.monotonic() - started)
        finally:
            server.cli("destroy", found.group(0))
    cold_s = stamp(cold["StartTime"]) - stamp(cold["SubmitTime"])
    warm_s = stamp(warm["StartTime"]) - stamp(warm["SubmitTime"])
    results.update({
        "sbatch_to_running_new_worker_s": cold_s,
        "sbatch_to_running_worker_up_s": warm_s,
        "idle_to_off_beyond_idle_time_s": round(off_after, 1),
        "monitor_read_s_median": round(statistics.median(reads), 3),
        "bare_ssh_true_s_median": round(statistics.median(bare), 3),
        "first_job_end": first_end.get("EndTime"),
    })  # fmt: skip
    print(json.dumps(results, indent=1))
    print("timeline of the first job (s after sbatch; Slurm's clock has 1 s steps):")
    for at, what in timeline:
        print(f"  {at:6.1f}  {what}")
    print(f"  {cold_s:6.1f}  job running")
    print(f"sbatch → running on a new worker: {cold_s:.0f} s (goal ≤ 10 s; with a worker up: "
          f"{warm_s:.0f} s)")
    print(f"idle → off: {off_after:.1f} s after idle_time {IDLE} s")
    ratio = statistics.median(reads) / max(statistics.median(bare), 1e-6)
    print(f"monitor read of Slurm: {statistics.median(reads) * 1000:.0f} ms per cycle, "
          f"{ratio:.2f}× a bare SSH round trip; policy: "
          f"{results['policy_ms_200_workers_2000_jobs']} ms for 200 workers, 2,000 jobs")


if __name__ == "__main__":
    sys.exit(main())
