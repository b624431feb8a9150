"""Concurrent TOSCA updates of one infrastructure through several servers on one database
(SQLite, PostgreSQL, MariaDB) lose nothing: each update is merged onto the template as the
others left it, so every node added ends up in the stored template and in the node rows."""

from __future__ import annotations

import asyncio
import threading

import yaml

from orbis.auth import identify
from orbis.providers.sim import SimProvider
from orbis.service import OrbisService
from orbis.store.repository import Store

ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"
RACERS = 6
BASE = ("tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n"
        "  node_templates:\n    vm:\n      type: tosca.nodes.Compute\n"
        "      capabilities: {scalable: {properties: {count: 0}}}\n")  # fmt: skip


def addition(n: int) -> str:
    """An update that adds a node template of its own (IM's add-resources merge)."""
    return BASE.replace("    vm:\n", f"    extra{n}:\n").replace("count: 0", "count: 1")


def test_concurrent_tosca_updates_are_all_kept(tmp_path, db_url) -> None:
    cloud = tmp_path / "cloud.db"
    services = [OrbisService(Store(db_url), SimProvider(cloud), tmp_path / "w", holder=f"t:{n}")
                for n in range(RACERS)]  # fmt: skip
    alice = identify(ALICE)[0]
    infra = asyncio.run(services[0].create(alice, BASE))
    start = threading.Barrier(RACERS)
    errors: list[BaseException] = []

    def update(n: int) -> None:
        start.wait()
        try:
            asyncio.run(services[n].add_resources(alice, infra, addition(n)))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=update, args=(n,)) for n in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    row = services[0].store.get(infra)
    assert row is not None
    nodes = yaml.safe_load(row.template)["topology_template"]["node_templates"]
    assert set(nodes) == {"vm", *(f"extra{n}" for n in range(RACERS))}  # no update lost
    names = sorted(n.name for n in services[0].store.nodes(infra) if n.desired != "absent")
    assert names == sorted(f"extra{n}" for n in range(RACERS))  # one node each, none twice
