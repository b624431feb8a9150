"""Lifecycle operations through the service layer, on the simulated cloud (no containers)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orbis.auth import identify
from orbis.providers.sim import SimProvider
from orbis.service import OrbisService
from orbis.store.repository import Store

TWO_NODES = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - indigo: https://raw.githubusercontent.com/indigo-dc/tosca-types/master/custom_types.yaml
topology_template:
  node_templates:
    front:
      type: tosca.nodes.indigo.Compute
      capabilities:
        endpoint: {properties: {network_name: PUBLIC}}
    wn:
      type: tosca.nodes.indigo.Compute
      capabilities:
        scalable: {properties: {count: 1}}
"""
ALICE = "type = InfrastructureManager; username = alice; password = a"


def who():
    return identify(ALICE)[0]


def make(tmp_path: Path, db_url: str, holder: str = "test:1", **sim) -> OrbisService:
    store = Store(db_url)
    provider = SimProvider(tmp_path / "cloud.db", latency=0.01, config_seconds=0.01, **sim)
    return OrbisService(store, provider, tmp_path / "work", holder=holder)


async def settle(svc: OrbisService, infra_id: str) -> dict[int, str]:
    assert await svc.wait_reconciled(infra_id, timeout=30)
    return {n.vm_id: n.state for n in svc.store.nodes(infra_id)}


@pytest.fixture
async def svc(tmp_path, db_url):
    service = make(tmp_path, db_url)
    await service.resume()
    yield service
    await service.shutdown()


async def test_scale_up_and_down_keeps_vm_ids_counting(svc):
    infra = await svc.create(who(), TWO_NODES)
    assert await settle(svc, infra) == {0: "configured", 1: "configured"}
    assert await svc.scale(who(), infra, "wn", 3) == [2, 3]
    assert await settle(svc, infra) == {0: "configured", 1: "configured", 2: "configured",
                                        3: "configured"}  # fmt: skip
    await svc.scale(who(), infra, "wn", 1)  # the oldest workers go first, as in IM
    assert await settle(svc, infra) == {0: "configured", 3: "configured"}
    machines = svc.provider.list_owned()
    assert sorted(m.vm_id for m in machines if m.infrastructure_id == infra) == [0, 3]
    assert await svc.scale(who(), infra, "wn", 2) == [4]  # ids are never reused


async def test_removal_list_chooses_which_nodes_go(svc):
    infra = await svc.create(who(), TWO_NODES.replace("count: 1", "count: 3"))
    await settle(svc, infra)
    update = ("topology_template:\n  node_templates:\n    wn:\n      capabilities:\n"
              "        scalable: {properties: {count: 2, removal_list: ['2']}}\n")  # fmt: skip
    await svc.add_resources(who(), infra, update)
    assert await settle(svc, infra) == {0: "configured", 1: "configured", 3: "configured"}


async def test_remove_stop_start_reboot(svc):
    infra = await svc.create(who(), TWO_NODES)
    await settle(svc, infra)
    await svc.power(who(), infra, "stop")
    assert await settle(svc, infra) == {0: "stopped", 1: "stopped"}
    assert svc.state(who(), infra).state == "stopped"
    await svc.power(who(), infra, "start", 1)
    assert await settle(svc, infra) == {0: "stopped", 1: "configured"}
    await svc.power(who(), infra, "reboot", 1)
    assert not svc.store.node(infra, 1).reboot_pending
    await svc.remove_nodes(who(), infra, [0])
    assert await settle(svc, infra) == {1: "configured"}
    kinds = [(a.kind, a.vm_id, a.status) for a in svc.actions.actions(infra)]
    assert ("stop", 0, "done") in kinds and ("reboot", 1, "done") in kinds
    assert ("destroy", 0, "done") in kinds


async def test_failed_node_does_not_fail_its_sibling_and_retry_recovers(svc):
    template = TWO_NODES.replace("network_name: PUBLIC}}", "network_name: PUBLIC}}\n"
                                 "        os: {properties: {image: missing-image}}")  # fmt: skip
    infra = await svc.create(who(), template)
    assert await settle(svc, infra) == {0: "failed", 1: "configured"}
    assert "missing-image not found" in svc.store.node(infra, 0).error
    assert svc.state(who(), infra).state == "failed"
    # the user fixes the image with an update, then asks for a retry
    fix = ("topology_template:\n  node_templates:\n    front:\n      capabilities:\n"
           "        os: {properties: {image: good-image}}\n")  # fmt: skip
    assert await svc.add_resources(who(), infra, fix) == []
    assert await svc.retry(who(), infra) == [0]
    assert await settle(svc, infra) == {0: "configured", 1: "configured"}
    assert svc.store.node(infra, 0).error == ""


async def test_transient_errors_are_retried_with_backoff(tmp_path, db_url):
    svc = make(tmp_path, db_url, transient_failures=2)
    await svc.resume()
    try:
        infra = await svc.create(who(), TWO_NODES.replace("count: 1", "count: 0"))
        assert await settle(svc, infra) == {0: "configured"}
        log = svc.store.node(infra, 0).log
        assert log.count("Transient error (sim: the API timed out); retrying in") == 2
    finally:
        await svc.shutdown()


async def test_two_processes_modifying_at_once_lose_nothing(tmp_path, db_url):
    first, second = make(tmp_path, db_url, "host-a:1"), make(tmp_path, db_url, "host-b:2")
    await first.resume()
    await second.resume()
    try:
        infra = await first.create(who(), TWO_NODES)
        await settle(first, infra)
        # both scale the same node at once, each from its own "process"
        await asyncio.gather(
            first.add_resources(who(), infra, _count("wn", 3)),
            second.add_resources(who(), infra, _count("front", 2)),
        )
        for svc in (first, second):
            await settle(svc, infra)
        names = sorted(n.name for n in first.store.nodes(infra))
        assert names == ["front", "front", "wn", "wn", "wn"]
        machines = [m for m in first.provider.list_owned() if m.infrastructure_id == infra]
        assert len(machines) == 5  # none created twice
    finally:
        await first.shutdown()
        await second.shutdown()


def _count(node: str, n: int) -> str:
    return (f"topology_template:\n  node_templates:\n    {node}:\n      capabilities:\n"
            f"        scalable: {{properties: {{count: {n}}}}}\n")  # fmt: skip


async def test_destroy_removes_everything_and_orphans_are_swept(tmp_path, db_url):
    svc = make(tmp_path, db_url)
    await svc.resume()
    infra = await svc.create(who(), TWO_NODES)
    await settle(svc, infra)
    await svc.destroy(who(), infra)
    assert [m for m in svc.provider.list_owned() if m.infrastructure_id == infra] == []
    # a machine the store never heard of (left by a crash of some other tool or version)
    from orbis.providers.base import NodeSpec

    svc.provider.launch(NodeSpec(infrastructure_id="ghost", vm_id=0, name="x"))
    await svc.shutdown()
    restarted = make(tmp_path, db_url)
    await restarted.resume()
    try:
        assert restarted.provider.list_owned() == []
        assert "ghost" not in restarted.provider.owned_infrastructures()
    finally:
        await restarted.shutdown()
