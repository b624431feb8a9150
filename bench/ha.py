"""High-availability figures, with two `orbis server` processes on one PostgreSQL database
(a throw-away one on 127.0.0.1:5432, or --db mariadb for 127.0.0.1:3306):

1. take-over: a 2-node deployment (simulated cloud: 0.5 s a call, 4 s of configuration) is
   sent to server A, A is killed (kill -9) while it works; printed: the time from A's death
   until server B holds the infrastructure's lease and works on it, and until it is done;
2. API throughput: `GET /infrastructures/{id}/state` with wrk (installed with apt if missing),
   50 connections for --seconds, against one server, then against both at once (one wrk per
   server, requests summed); printed: requests/s and latency of each run.

    .venv/bin/python bench/ha.py [--db postgresql|mariadb] [--seconds 10]

Figures depend on the machine (and on what else runs on it); nothing is asserted.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orbis.engine.scheduler import lease_name
from orbis.store.coordination import Leases
from orbis.store.repository import Store
from orbis.testing.cluster import servers, settled, wait_for
from orbis.testing.databases import create_database, drop_database

TWO_NODES = """tosca_definitions_version: tosca_simple_yaml_1_0
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
                tasks: [{ansible.builtin.command: "true"}]
"""
YAML = {"Content-Type": "text/yaml"}


def takeover(db_url: str, root: Path) -> None:
    # one home for both: the simulated cloud is a file in it, and must be the same cloud
    env = {"ORBIS_PROVIDER": "sim", "ORBIS_SIM_CONFIG_SECONDS": "4", "ORBIS_SIM_LATENCY": "0.5"}
    with servers(None, db_url, root / "takeover", env=env) as (a, b), b.client() as client:
        b.env["ORBIS_HOME"] = a.env["ORBIS_HOME"]
        b.stop()
        b.start()
        store = Store(db_url, run_migrations=False)
        with a.client() as to_a:
            infra = to_a.post("/infrastructures", params={"async": "yes"}, content=TWO_NODES,
                              headers=YAML).text.rsplit("/", 1)[-1]  # fmt: skip
        lease = lease_name(infra)
        leases = Leases(store, holder="bench")
        holder_a = wait_for(lambda: leases.holder_of(lease), timeout=60, interval=0.02)
        wait_for(lambda: client.get(f"/orbis/infrastructures/{infra}").json()["phase"]
                 in ("launching", "configuring"), timeout=60, interval=0.02)  # fmt: skip
        a.kill()
        died = time.monotonic()

        def taken() -> bool:
            holder = leases.holder_of(lease)
            return holder is not None and holder != holder_a

        wait_for(taken, timeout=60, interval=0.02)
        resumed = time.monotonic() - died
        wait_for(lambda: settled(client, infra), timeout=120, interval=0.1)
        finished = time.monotonic() - died
        store.engine.dispose()
    print(f"take-over: server B resumed {resumed:.1f} s after server A's death "
          f"(lease {Leases(store).ttl:.0f} s, poll every 1 s); deployment done after "
          f"{finished:.1f} s")  # fmt: skip


def wrk(url: str, header: str, seconds: int, connections: int = 50) -> subprocess.Popen[str]:
    return subprocess.Popen(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
                             "-H", f"Authorization: {header}", url],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip


def figures(report: str) -> tuple[float, str, str]:
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+(\S+)", report)
    p99 = re.search(r"99%\s+(\S+)", report)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    if errors:
        print(f"  warning: {errors.group(1)} failed requests")
    return rate, p50.group(1) if p50 else "?", p99.group(1) if p99 else "?"


def throughput(db_url: str, root: Path, seconds: int) -> None:
    with servers(None, db_url, root / "load", env={"ORBIS_PROVIDER": "sim"}) as (a, b):
        header = a.auth_file.read_text().strip()
        with a.client() as client:
            infra = client.post("/infrastructures", content=TWO_NODES,
                                headers=YAML).text.rsplit("/", 1)[-1]  # fmt: skip
        path = f"/infrastructures/{infra}/state"
        one = figures(wrk(a.url + path, header, seconds).communicate()[0])
        print(f"1 server : {one[0]:8.0f} requests/s  p50 {one[1]}  p99 {one[2]}")
        runs = [wrk(s.url + path, header, seconds, 25) for s in (a, b)]
        both = [figures(run.communicate()[0]) for run in runs]
        print(f"2 servers: {sum(f[0] for f in both):8.0f} requests/s  "
              + "  ".join(f"(server {n}: p50 {f[1]} p99 {f[2]})" for n, f in enumerate(both)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["postgresql", "mariadb"], default="postgresql")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (apt-get install wrk)")
    db_url = create_database(args.db, prefix="orbis_bench")
    try:
        with tempfile.TemporaryDirectory(prefix="orbis-ha-bench-") as tmp:
            print(f"database: {args.db}")
            takeover(db_url, Path(tmp))
            throughput(db_url, Path(tmp), args.seconds)
    finally:
        drop_database(db_url)


if __name__ == "__main__":
    main()
