"""IM's alter with a new disk: the disk is attached to the running node at its own site,
recorded on the node (its RADL shows it), and altering again with the same disk changes
nothing; a site that cannot add disks says so. Sites are simulated clouds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from orbis.api.radl_view import node_radl
from orbis.auth import identify
from orbis.providers.base import Provider
from orbis.providers.sim import SimProvider, SimSite
from orbis.secrets import Sealer
from orbis.service import OrbisService, ServiceError
from orbis.store.repository import Store

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    front:
      type: tosca.nodes.Compute
      capabilities:
        host: {properties: {num_cpus: 1, mem_size: 1 GB}}
"""
NEW_DISK = """system front (
  disk.1.size = 10G and disk.1.mount_path = '/data' and disk.1.fstype = 'ext4'
)
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"


class NoDisks(SimSite):
    add_disk = Provider.add_disk  # the interface's answer: not supported


@pytest.fixture
async def svc(tmp_path: Path, db_url: str) -> AsyncIterator[OrbisService]:
    store = Store(db_url)
    default = SimProvider(tmp_path / "local.db", latency=0.0, config_seconds=0.0)
    started = OrbisService(store, default, tmp_path / "work", holder="test:1")
    started.configure_access(Sealer(Fernet.generate_key()))
    started.sites.classes.update({"simcloud": SimSite, "nodisks": NoDisks})
    await started.resume()
    yield started
    await started.shutdown()


async def test_a_new_disk_is_attached_at_the_nodes_site_and_recorded(svc, tmp_path):
    auth = f"{ALICE}\nid = cloud; type = SimCloud; path = {tmp_path / 'cloud.db'}"
    who = identify(auth)[0]
    infra = await svc.create(who, TEMPLATE)
    assert await svc.wait_reconciled(infra, timeout=30)
    (node,) = svc.store.nodes(infra)
    node = await svc.alter(who, infra, node.vm_id, NEW_DISK)
    cloud = SimSite({"path": str(tmp_path / "cloud.db")})
    assert cloud.disks(node.provider_id) == {1: 10**10}
    assert (node.spec or {})["disks"] == [{"index": 1, "size": 10**10,
        "mount_path": "/data", "fstype": "ext4", "device": "/dev/vdb"}]  # fmt: skip
    (system,) = [o for o in node_radl(node, svc.template(svc.store.get(infra)).computes["front"],
                                      "key") if o["class"] == "system"]  # fmt: skip
    assert (system["disk.1.size"], system["disk.1.mount_path"]) == (10**10, "/data")
    assert "Disk 1 attached to VM 0 as /dev/vdb" in svc.store.get(infra).log
    with pytest.raises(ServiceError, match="nothing to change"):
        await svc.alter(who, infra, node.vm_id, NEW_DISK)  # the node has disk 1 now
    resized = await svc.alter(who, infra, node.vm_id, "system front ( cpu.count = 2 )")
    assert (resized.spec or {})["num_cpus"] == 2 and len(resized.spec["disks"]) == 1
    assert cloud.disks(node.provider_id) == {1: 10**10}


async def test_a_site_that_cannot_add_disks_says_so(svc, tmp_path):
    auth = f"{ALICE}\nid = old; type = NoDisks; path = {tmp_path / 'old.db'}"
    who = identify(auth)[0]
    infra = await svc.create(who, TEMPLATE)
    assert await svc.wait_reconciled(infra, timeout=30)
    (node,) = svc.store.nodes(infra)
    with pytest.raises(ServiceError, match="adding disks to a running machine is not supported"):
        await svc.alter(who, infra, node.vm_id, NEW_DISK)
    assert not (svc.store.node(infra, node.vm_id).spec or {}).get("disks")
