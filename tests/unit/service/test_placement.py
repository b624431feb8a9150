"""Placement through the service: nodes go to the caller's sites, fall back to the next site
when one refuses (quota), and every site used is cleaned up on destroy. The sites here are
simulated clouds (one SQLite file each) plugged into the site registry as a cloud type."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import delete

from orbis.auth import identify
from orbis.providers.base import Machine, NodeSpec, QuotaExceeded
from orbis.providers.sim import SimProvider, SimSite
from orbis.secrets import Sealer
from orbis.service import OrbisService
from orbis.store.repository import Store
from orbis.store.schema import InfrastructureRow

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    front:
      type: tosca.nodes.Compute
      capabilities:
        host: {properties: {num_cpus: 1}}
        scalable: {properties: {count: 2}}
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"


class FullSite(SimSite):
    """A cloud whose project has no instance left."""

    def launch(self, spec: NodeSpec) -> Machine:
        raise QuotaExceeded("Quota exceeded for instances: Requested 1, but already used 10 of "
                            "10 instances")  # fmt: skip


class BrokenSite(SimSite):
    """A cloud whose SDK fails in a way its provider did not type."""

    def launch(self, spec: NodeSpec) -> Machine:
        raise RuntimeError("Traceback-worthy SDK failure, token=s3cr3t")


def service(tmp_path: Path, db_url: str) -> OrbisService:
    store = Store(db_url)
    default = SimProvider(tmp_path / "local.db", latency=0.0, config_seconds=0.0)
    svc = OrbisService(store, default, tmp_path / "work", holder="test:1")
    svc.configure_access(Sealer(Fernet.generate_key()))
    svc.sites.classes.update({"full": FullSite, "simcloud": SimSite, "broken": BrokenSite})
    return svc


@pytest.fixture
async def svc(tmp_path: Path, db_url: str) -> AsyncIterator[OrbisService]:
    started = service(tmp_path, db_url)
    await started.resume()
    yield started
    await started.shutdown()


def machines(path: Path) -> list[Machine]:
    return SimSite({"path": str(path)}).list_owned()


async def test_quota_error_at_the_first_site_falls_back_to_the_second(svc, tmp_path):
    auth = (f"{ALICE}\nid = first; type = Full; path = {tmp_path / 'a.db'}\n"
            f"id = second; type = SimCloud; path = {tmp_path / 'b.db'}")  # fmt: skip
    who = identify(auth)[0]
    infra = await svc.create(who, TEMPLATE)
    assert await svc.wait_reconciled(infra, timeout=30)
    nodes = svc.store.nodes(infra)
    assert [(n.state, n.site) for n in nodes] == [("configured", "second")] * 2
    log = svc.store.nodes(infra)[0].log
    assert "Site first could not launch front" in log and "Quota exceeded" in log
    assert "trying second" in log
    assert len(machines(tmp_path / "b.db")) == 2 and machines(tmp_path / "local.db") == []
    assert "on sites first, second" in svc.store.get(infra).log
    assert SimSite({"path": str(tmp_path / "a.db")}).owned_infrastructures() == {infra}
    await svc.destroy(who, infra)
    assert machines(tmp_path / "b.db") == []
    # the site only tried was prepared (a network there): destroy cleans it too
    assert SimSite({"path": str(tmp_path / "a.db")}).owned_infrastructures() == set()


async def test_every_site_refusing_fails_the_node_with_each_reason(svc, tmp_path):
    auth = (f"{ALICE}\nid = one; type = Full; path = {tmp_path / 'a.db'}\n"
            f"id = two; type = OpenNebula; host = x")  # fmt: skip
    infra = await svc.create(identify(auth)[0], TEMPLATE)
    assert await svc.wait_reconciled(infra, timeout=30)
    node = svc.store.nodes(infra)[0]
    assert node.state == "failed"
    assert "one: Quota exceeded" in node.error and "two: " in node.error
    assert "OpenNebula are not supported" in node.error


async def test_placement_policy_names_the_site(svc, tmp_path):
    placed = TEMPLATE + """  policies:
    - here:
        type: tosca.policies.Placement
        properties: {cloud_id: second}
        targets: [front]
"""
    auth = (f"{ALICE}\nid = first; type = SimCloud; path = {tmp_path / 'a.db'}\n"
            f"id = second; type = SimCloud; path = {tmp_path / 'b.db'}")  # fmt: skip
    infra = await svc.create(identify(auth)[0], placed)
    assert await svc.wait_reconciled(infra, timeout=30)
    assert {n.site for n in svc.store.nodes(infra)} == {"second"}
    assert machines(tmp_path / "a.db") == [] and len(machines(tmp_path / "b.db")) == 2


async def test_without_cloud_lines_a_placement_is_tried_on_the_local_back_end(svc, tmp_path):
    placed = TEMPLATE + """  policies:
    - here:
        type: tosca.policies.Placement
        properties: {cloud_id: cesnet}
        targets: [front]
"""
    infra = await svc.create(identify(ALICE)[0], placed)
    assert await svc.wait_reconciled(infra, timeout=30)
    nodes = svc.store.nodes(infra)
    assert {(n.state, n.site) for n in nodes} == {("configured", None)}
    assert "placement on 'cesnet' ignored" in nodes[0].log
    assert len(machines(tmp_path / "local.db")) == 2


async def test_an_sdk_error_no_provider_typed_is_a_node_failure_and_the_next_site_is_tried(
    svc, tmp_path
):
    auth = (f"{ALICE}\nid = bad; type = Broken; path = {tmp_path / 'a.db'}\n"
            f"id = good; type = SimCloud; path = {tmp_path / 'b.db'}")  # fmt: skip
    infra = await svc.create(identify(auth)[0], TEMPLATE)
    assert await svc.wait_reconciled(infra, timeout=30)
    nodes = svc.store.nodes(infra)
    assert {(n.state, n.site) for n in nodes} == {("configured", "good")}
    assert "Site bad could not launch front (unexpected RuntimeError" in nodes[0].log
    assert "s3cr3t" not in nodes[0].log


async def test_start_up_sweeps_orphans_at_the_operators_sites_too(tmp_path, db_url):
    """The operator's sites (ORBIS_SITES) are the clouds whose credentials the server holds:
    at start-up, what this installation left there and no infrastructure owns is removed."""
    shared = {"id": "shared", "type": "SimCloud", "path": str(tmp_path / "shared.db")}
    first = service(tmp_path, db_url)
    first.sites.operator_lines = [shared]
    await first.resume()
    who = identify(ALICE)[0]  # no cloud line: the operator's site is the caller's site
    kept = await first.create(who, TEMPLATE)
    gone = await first.create(who, TEMPLATE)
    assert await first.wait_reconciled(kept, timeout=30)
    assert await first.wait_reconciled(gone, timeout=30)
    assert {n.site for n in first.store.nodes(kept)} == {"shared"}
    await first.shutdown()
    # a crash of another tool: the record of one infrastructure is gone, and one node of the
    # other is recorded at another site (a launch the engine moved on from)
    with first.store.session() as s:
        s.execute(delete(InfrastructureRow).where(InfrastructureRow.id == gone))
    first.store.update_node(kept, 1, site="elsewhere")
    cloud = SimSite(shared)
    cloud.installation = first.store.installation_id()
    before = {(m.infrastructure_id, m.vm_id) for m in cloud.list_owned()}
    assert before == {(kept, 0), (kept, 1), (gone, 0), (gone, 1)}

    restarted = service(tmp_path, db_url)
    restarted.sites.operator_lines = [shared]
    await restarted.resume()
    try:
        after = {(m.infrastructure_id, m.vm_id) for m in cloud.list_owned()}
        assert after == {(kept, 0)}
        assert gone not in cloud.owned_infrastructures()
    finally:
        await restarted.shutdown()
