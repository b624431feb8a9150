"""The per-user node quota holds under concurrency: servers sharing one database (SQLite,
PostgreSQL, MariaDB) that create, add or import for one user at the same moment never together
pass it, because each check and the rows it allows are made under the owner's lock
(store/owner_lock.py)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from orbis.auth import Identity, identify
from orbis.providers.sim import SimProvider
from orbis.service import OrbisService, QuotaExceeded
from orbis.store import quotas
from orbis.store.repository import Store

ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"
QUOTA = 3
RACERS = 8


def tosca(count: int) -> str:
    return ("tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n"
            "  node_templates:\n    vm:\n      type: tosca.nodes.Compute\n"
            "      capabilities:\n        scalable:\n"
            f"          properties: {{count: {count}}}\n")  # fmt: skip


def race(services: list[OrbisService],
         act: Callable[[OrbisService], Coroutine[Any, Any, Any]]) -> list[str]:  # fmt: skip
    """Run `act` on every service at once, each in a thread of its own with its own event loop
    (as separate server processes would); 'ok' or the error's text, per service."""
    start = threading.Barrier(len(services))
    results: list[str] = [""] * len(services)

    def run(i: int) -> None:
        start.wait()
        try:
            asyncio.run(act(services[i]))
            results[i] = "ok"
        except QuotaExceeded as exc:
            results[i] = str(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(services))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def servers(tmp_path, db_url, monkeypatch) -> tuple[list[OrbisService], Identity]:
    monkeypatch.setenv("ORBIS_MAX_NODES_PER_USER", str(QUOTA))
    cloud = tmp_path / "cloud.db"
    made = [OrbisService(Store(db_url), SimProvider(cloud), tmp_path / "w", holder=f"test:{n}")
            for n in range(RACERS)]  # fmt: skip
    return made, identify(ALICE)[0]


def settle(results: list[str], store: Store, alice: Identity) -> None:
    assert results.count("ok") == QUOTA, results
    assert all(r == "ok" or "ORBIS_MAX_NODES_PER_USER" in r for r in results), results
    assert quotas.live_nodes(store, alice.key) == QUOTA


def test_concurrent_creates_never_pass_the_user_quota(servers) -> None:
    services, alice = servers
    results = race(services, lambda svc: svc.create(alice, tosca(1)))
    settle(results, services[0].store, alice)


def test_concurrent_adds_never_pass_the_user_quota(servers) -> None:
    services, alice = servers
    infra = asyncio.run(services[0].create(alice, tosca(0)))
    one_more = "system vm (cpu.count >= 1)\ndeploy vm 1\n"  # RADL: one node more each
    results = race(services, lambda svc: svc.add_resources(alice, infra, one_more))
    settle(results, services[0].store, alice)


def test_concurrent_imports_never_pass_the_user_quota(servers) -> None:
    services, alice = servers
    one = asyncio.run(services[0].create(alice, tosca(1)))
    data = asyncio.run(services[0].export(alice, one, delete=True))
    assert len(json.loads(data)["nodes"]) == 1
    results = race(services, lambda svc: svc.import_(alice, data))
    settle(results, services[0].store, alice)
