"""Other users' latency while hostile requests are refused (issue 11, docs/limits.md).

    .venv/bin/python bench/hostile_load.py [--clients 4] [--seconds 10]

A real `orbis server` on 127.0.0.1 with the simulated cloud (ORBIS_PROVIDER=sim) in a
throw-away home. A normal user owns 5 infrastructures; `--clients` concurrent clients of that
user poll `GET /infrastructures` (the cached path) and `GET /infrastructures?filter=bench`
(a query string bypasses the cache: routing, the store and RE2 every time) for `--seconds`
twice: once alone (the baseline), once while a hostile user sends rounds of 10 concurrent
hostile requests: an alias bomb, `count: 100000000` (create, dry run and add), a RADL
`deploy` of 10^8, a catastrophic `?filter=`, a 3 MB document, `random(10**9)`, 10,000 levels
of nesting and a catastrophic `pattern` constraint. Both phases are measured the same way.

Prints p50/p99 of each route per phase, the normal user's failed or non-2xx requests (must be
0), and every hostile request's status and slowest time (each must be a 4xx within 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import time
from typing import Any

import httpx

from orbis.testing.server import orbis_server

NORMAL = "id = im; type = InfrastructureManager; username = normal; password = pw-normal"
HOSTILE = "id = im; type = InfrastructureManager; username = mallory; password = pw-m"
YAML = {"Content-Type": "text/yaml"}
HEAD = "tosca_definitions_version: tosca_simple_yaml_1_0\n"


def tosca(count: int, extra: str = "") -> str:
    return (HEAD + "metadata: {infra_name: bench}\ntopology_template:\n" + extra +
            "  node_templates:\n    vm:\n      type: tosca.nodes.Compute\n"
            f"      capabilities:\n        scalable:\n          properties:\n"
            f"            count: {count}\n")  # fmt: skip


def alias_bomb() -> str:
    text = HEAD + 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]\n"
    return text


def hostile_requests(infra: str) -> list[tuple[str, str, str, str, dict[str, str]]]:
    """(label, method, path, body, headers) of the ten hostile requests."""
    update = ("topology_template:\n  node_templates:\n    vm:\n      capabilities:\n"
              "        scalable:\n          properties:\n            count: 100000000\n")
    random_input = "  inputs:\n    pw: {type: string, default: 'random(1000000000)'}\n"
    pattern = ("  inputs:\n    pw:\n      type: string\n      default: '" + "a" * 30_000 +
               "b'\n      constraints: [{pattern: '(a+)+$'}]\n")  # fmt: skip
    return [
        ("alias bomb", "POST", "/infrastructures", alias_bomb(), YAML),
        ("count 10^8", "POST", "/infrastructures", tosca(100_000_000), YAML),
        ("count 10^8 dry run", "POST", "/infrastructures?dry_run=1", tosca(100_000_000), YAML),
        ("RADL deploy 10^8", "POST", "/infrastructures",
         "system vm (cpu.count >= 1)\ndeploy vm 100000000\n", {"Content-Type": "text/plain"}),
        ("add count 10^8", "POST", f"/infrastructures/{infra}", update, YAML),
        ("filter (a+)+$", "GET", "/infrastructures?filter=(a%2B)%2B%24", "", {}),
        ("3 MB document", "POST", "/infrastructures", tosca(1) + "#" * (3 << 20), YAML),
        ("random(10**9)", "POST", "/infrastructures", tosca(1, random_input), YAML),
        ("10,000 levels", "POST", "/infrastructures",
         HEAD + "x: " + "[" * 10_000 + "]" * 10_000, YAML),
        ("pattern (a+)+$", "POST", "/infrastructures", tosca(1, pattern), YAML),
    ]


async def poll(client: httpx.AsyncClient, path: str, stop: float, times: list[float],
               failures: list[str]) -> None:  # fmt: skip
    while time.perf_counter() < stop:
        start = time.perf_counter()
        try:
            answer = await client.get(path, headers={"Authorization": NORMAL})
            if answer.status_code != 200:
                failures.append(f"{path}: {answer.status_code}")
        except httpx.HTTPError as exc:
            failures.append(f"{path}: {type(exc).__name__}")
        times.append(time.perf_counter() - start)


def hostile_process(url: str, infra: str, seconds: float, out: Any) -> None:
    """The hostile user, in its own process: its bodies (3 MB) and its event loop do not
    share the load generator's CPU time."""

    async def run() -> dict[str, list[tuple[int, float]]]:
        seen: dict[str, list[tuple[int, float]]] = {}
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            await hostile_rounds(client, infra, time.perf_counter() + seconds, seen)
        return seen

    out.send(asyncio.run(run()))


async def hostile_rounds(client: httpx.AsyncClient, infra: str, stop: float,
                         seen: dict[str, list[tuple[int, float]]]) -> None:  # fmt: skip
    requests = hostile_requests(infra)

    async def one(label: str, method: str, path: str, body: str, headers: dict[str, str]
                  ) -> None:  # fmt: skip
        start = time.perf_counter()
        answer = await client.request(method, path, content=body or None,
                                      headers={**headers, "Authorization": HOSTILE})
        seen.setdefault(label, []).append((answer.status_code, time.perf_counter() - start))

    while time.perf_counter() < stop:
        await asyncio.gather(*(one(*r) for r in requests))


async def phase(url: str, clients: int, seconds: float, infra: str | None
                ) -> tuple[dict[str, list[float]], list[str], dict[str, Any]]:  # fmt: skip
    times: dict[str, list[float]] = {"/infrastructures": [], "/infrastructures?filter=bench": []}
    failures: list[str] = []
    seen: dict[str, list[tuple[int, float]]] = {}
    receiver, sender = multiprocessing.Pipe(duplex=False)
    hostile = None
    if infra is not None:
        hostile = multiprocessing.Process(target=hostile_process,
                                          args=(url, infra, seconds, sender))  # fmt: skip
        hostile.start()
    limits = httpx.Limits(max_connections=clients * 2 + 20)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        stop = time.perf_counter() + seconds
        await asyncio.gather(*(poll(client, path, stop, found, failures)
                               for path, found in times.items() for _ in range(clients)))
    if hostile is not None:
        seen = await asyncio.to_thread(receiver.recv)
        hostile.join()
    return times, failures, seen


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    os.environ["ORBIS_PROVIDER"] = "sim"
    os.environ.setdefault("ORBIS_SIM_LATENCY", "0")
    with orbis_server(user="normal") as server, httpx.Client(base_url=server.url,
                                                             timeout=60) as setup:  # fmt: skip
        for _ in range(5):
            made = setup.post("/infrastructures", content=tosca(1), headers={
                **YAML, "Authorization": NORMAL})  # fmt: skip
            made.raise_for_status()
        mine = setup.post("/infrastructures", content=tosca(1, "  description: " + "a" * 50_000
                                                            + "\n"),
                          headers={**YAML, "Authorization": HOSTILE})  # fmt: skip
        mine.raise_for_status()
        infra = mine.text.rsplit("/", 1)[-1]
        print(f"orbis server {server.url}, simulated cloud; {args.clients} clients per route, "
              f"{args.seconds:g} s per phase")
        bad = 0
        for label, hostile in (("baseline", None), ("with hostile requests", infra)):
            times, failures, seen = asyncio.run(phase(server.url, args.clients, args.seconds,
                                                      hostile))  # fmt: skip
            print(f"\n{label}:")
            for path, found in times.items():
                print(f"  GET {path:32} {len(found):6} requests  p50 {percentile(found, 50):6.1f}"
                      f" ms  p99 {percentile(found, 99):6.1f} ms")
            print(f"  normal user's failed or non-2xx requests: {len(failures)}"
                  + (f" ({', '.join(sorted(set(failures))[:5])})" if failures else ""))
            bad += len(failures)
            for name, results in seen.items():
                codes = sorted({code for code, _ in results})
                worst = max(took for _, took in results)
                median = statistics.median(took for _, took in results)
                ok = all(400 <= code < 500 or (name.startswith("filter") and code == 200)
                         for code in codes) and worst < 1.0  # fmt: skip
                bad += not ok
                print(f"  hostile {name:20} x{len(results):3}  status {codes}  median "
                      f"{median * 1000:6.1f} ms  slowest {worst * 1000:6.1f} ms"
                      f"{'' if ok else '  <-- NOT BOUNDED'}")
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
