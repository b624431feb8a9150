"""API load figures: 100 stored infrastructures (3 nodes each), 50 concurrent clients on
loopback against `GET /infrastructures` and `GET /infrastructures/{id}/state`, the state
requests spread over all 100 infrastructures (no single cached id). With wrk, each route runs
for --seconds on a fresh server; the Python client mixes both routes for --seconds. Any failed
request (non-2xx, socket error) is counted, printed, and makes the bench exit 1.

    .venv/bin/python bench/api_load.py [--clients 50] [--seconds 20] [--churn 20]

The server is a real `orbis server` in its own throw-away home; the load comes from a separate
process (httpx, asyncio), so the server's two cores are not shared with the client's event loop
more than the machine forces. Prints requests/s, p50 and p99 latency per route.

`--churn N` commits N node changes a second from another connection while the load runs (as
the engine does during deployments): every commit invalidates the API's cached answers
(orbis.api.hot), so this measures the uncached path too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
metadata:
  infra_name: bench-{n}
topology_template:
  node_templates:
    node:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties:
            count: 3
"""
USER, PASSWORD = "bench", "bench-pw"
AUTH = f"id = im; type = InfrastructureManager; username = {USER}; password = {PASSWORD}"


def seed(home: Path, count: int = 100, nodes: int = 3) -> list[str]:
    """Insert infrastructures straight into the store, as if deployed and configured."""
    import uuid

    from orbis.auth import identity_key
    from orbis.store.repository import Store

    store = Store(f"sqlite:///{home / 'orbis.db'}")
    key = identity_key(USER, PASSWORD)
    ids = []
    for n in range(count):
        infra_id = str(uuid.uuid4())
        store.create_infrastructure(
            id=infra_id,
            owner_key=key,
            owner_name=USER,
            name=f"bench-{n}",
            template=TEMPLATE.format(n=n),
            phase="done",
            generation=1,
            reconciled=1,
        )  # fmt: skip  (reconciled: the engine has nothing to do for them)
        store.add_owners(infra_id, [(key, USER)])
        for vm_id in store.add_nodes(infra_id, ["node"] * nodes):
            store.update_node(infra_id, vm_id, state="configured", needs_config=False,
                              private_ip=f"10.0.{n}.{vm_id}")  # fmt: skip
        ids.append(infra_id)
    store.engine.dispose()
    return ids


async def load(url: str, ids: list[str], clients: int, seconds: float) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = {"list": [], "state": []}
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": AUTH}, limits=limits) as c:
        deadline = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            nonlocal errors
            i = w
            while time.perf_counter() < deadline:
                i += 1
                kind = "list" if i % 2 else "state"
                path = (
                    "/infrastructures"
                    if kind == "list"
                    else f"/infrastructures/{ids[i % len(ids)]}/state"
                )
                start = time.perf_counter()
                response = await c.get(path)
                latencies[kind].append(time.perf_counter() - start)
                errors += response.status_code != 200

        await asyncio.gather(*(worker(w) for w in range(clients)))
    latencies["errors"] = [float(errors)]
    return latencies


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--generator", nargs=2, metavar=("URL", "IDS_FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--churn", type=float, default=0, help="node changes committed per s")
    parser.add_argument("--python-client", action="store_true",
                        help="load from Python (httpx) even when wrk is installed")  # fmt: skip
    args = parser.parse_args()
    if args.generator:  # the load-generator process
        url, ids_file = args.generator
        ids = json.loads(Path(ids_file).read_text())
        result = asyncio.run(load(url, ids, args.clients, args.seconds))
        print(json.dumps(result))
        return

    from orbis.testing.server import RunningServer

    if shutil.which("wrk") and not args.python_client:
        return wrk_figures(args.clients, args.seconds, args.churn)

    with tempfile.TemporaryDirectory(prefix="orbis-bench-") as tmp:
        home = Path(tmp)
        ids = seed(home)
        (home / "ids.json").write_text(json.dumps(ids))
        server = RunningServer(home, None, USER)
        server.env["ORBIS_LOG_LEVEL"] = "warning"
        server.start()
        try:
            httpx.get(f"{server.url}/infrastructures", headers={"Authorization": AUTH})  # warm
            with churning(home, ids[-1], args.churn):
                done = subprocess.run(
                    [sys.executable, __file__, "--clients", str(args.clients), "--seconds",
                     str(args.seconds), "--generator", server.url, str(home / "ids.json")],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
        finally:
            server.stop()
    result = json.loads(done.stdout)
    total = sum(len(result[k]) for k in ("list", "state"))
    errors = int(result["errors"][0])
    print(f"{len(ids)} infrastructures × 3 nodes, {args.clients} clients, {args.seconds:.0f} s "
          f"(both routes mixed), failed requests: {errors}")  # fmt: skip
    print(f"{'route':<8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for kind in ("list", "state"):
        values = result[kind]
        rate = len(values) / args.seconds
        print(f"{kind:<8} {rate:8.0f} {pct(values, 50):8.1f} {pct(values, 99):8.1f}")
    everything = result["list"] + result["state"]
    rate = total / args.seconds
    print(f"{'all':<8} {rate:8.0f} {pct(everything, 50):8.1f} {pct(everything, 99):8.1f}")
    if errors:
        raise SystemExit(f"{errors} requests failed (non-2xx)")


@contextmanager
def churning(home: Path, infra_id: str, rate: float) -> Iterator[None]:
    """Commit `rate` node state changes a second (from this process) until the block ends."""
    if rate <= 0:
        yield
        return
    from orbis.store.repository import Store

    store = Store(f"sqlite:///{home / 'orbis.db'}", run_migrations=False)
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.wait(1 / rate):
            n += 1
            store.update_node(infra_id, 0, state="running" if n % 2 else "configured")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join()
        store.engine.dispose()


def wrk_figures(clients: int, seconds: float, churn: float = 0) -> None:
    """The same load from wrk (C, one thread): the generator takes far less of the 2 cores than
    a Python client, so the figures are the server's. Each route gets half the time, on a fresh
    server: a second wrk run against the same server paid ~1 s to open its connections, which is
    the kernel's, not the API's."""
    from orbis.testing.server import RunningServer

    print(f"100 infrastructures × 3 nodes, {clients} connections (wrk), {seconds:.0f} s per "
          f"route, {churn:g} commits/s; state requests rotate over all 100 ids")  # fmt: skip
    print(f"{'route':<8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>8}")
    failures = 0
    for kind in ("list", "state"):
        with tempfile.TemporaryDirectory(prefix="orbis-bench-") as tmp:
            home = Path(tmp)
            ids = seed(home)
            server = RunningServer(home, None, USER)
            server.env["ORBIS_LOG_LEVEL"] = "warning"
            server.start()
            script = home / "rotate.lua"
            script.write_text(rotation_script(ids if kind == "state" else []))
            try:
                with churning(home, ids[-1], churn):
                    done = subprocess.run(
                        ["wrk", "-t1", f"-c{clients}", f"-d{seconds:.0f}s", "--latency",
                         "-s", str(script), "-H", f"Authorization: {AUTH}",
                         server.url + "/infrastructures"],
                        capture_output=True, text=True, check=True,
                    ).stdout  # fmt: skip
            finally:
                server.stop()
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", done).group(1))  # type: ignore[union-attr]
        p50, p99 = (_ms(re.search(rf"\s{p}%\s+(\S+)", done).group(1))  # type: ignore[union-attr]
                    for p in ("50", "99"))  # fmt: skip
        failed = failed_requests(done)
        failures += failed
        print(f"{kind:<8} {rate:8.0f} {p50:8.1f} {p99:8.1f} {failed:8d}")
    if failures:
        raise SystemExit(f"{failures} requests failed (non-2xx or socket errors)")


def rotation_script(ids: list[str]) -> str:
    """A wrk Lua script: each request asks for the next id's state (or the list, without ids)."""
    if not ids:
        return ""
    listed = ", ".join(f'"{i}"' for i in ids)
    return (f"local ids = {{{listed}}}\nlocal n = 0\nrequest = function()\n  n = n + 1\n"
            "  return wrk.format(nil, '/infrastructures/' .. ids[n % #ids + 1] .. '/state')\n"
            "end\n")  # fmt: skip


def failed_requests(report: str) -> int:
    """Non-2xx/3xx answers plus socket errors, as wrk reports them."""
    failed = 0
    if found := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", report):
        failed += int(found.group(1))
    if found := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                          report):  # fmt: skip
        failed += sum(int(n) for n in found.groups())
    return failed


def _ms(text: str) -> float:
    """wrk's '12.3ms' / '1.2s' / '800us' as milliseconds."""
    for unit, factor in (("ms", 1.0), ("us", 0.001), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


if __name__ == "__main__":
    main()
