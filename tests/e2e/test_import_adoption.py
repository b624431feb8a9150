"""An import adopts only what its importer owns (issue 11, item 3), on real containers.

Bob imports Alice's export, with her container's id in it: the node comes in detached, every
action on it is refused naming why, and Alice's container stays running, untouched. Alice
importing her own export adopts the node: she can act on it, and destroying the import removes
it. On the local back-end, volume_id must name a volume of the owner's own.
"""

from __future__ import annotations

import json
import uuid

import docker
import pytest

from orbis.auth import identify
from orbis.model.infrastructure import Compute, Volume
from orbis.ownership import OwnerMarks
from orbis.providers.base import LABEL_INFRASTRUCTURE, LABEL_OWNER, NodeSpec, ProviderError
from orbis.providers.local import LocalProvider
from orbis.service import Detached

pytestmark = [pytest.mark.e2e]

ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"
BOB = "id = im; type = InfrastructureManager; username = bob; password = b"
ONE_NODE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    box:
      type: tosca.nodes.Compute
"""


def _fingerprint(engine: docker.DockerClient, container_id: str) -> tuple[str, str, dict]:
    """What any action would change: status, start time, labels."""
    c = engine.containers.get(container_id)
    return c.status, c.attrs["State"]["StartedAt"], dict(c.labels)


async def test_bob_importing_alices_export_can_touch_nothing(engine_url, local_service):
    svc = local_service
    engine = docker.DockerClient(base_url=engine_url)
    alice, bob = identify(ALICE)[0], identify(BOB)[0]
    made: list[tuple[object, str]] = []
    try:
        infra = await svc.create(alice, ONE_NODE)
        made.append((alice, infra))
        assert await svc.wait_reconciled(infra, timeout=180)
        (node,) = svc.store.nodes(infra)
        assert node.state == "configured", node.log
        labels = engine.containers.get(node.provider_id).labels
        # a keyed hash of the owner: neither the user name nor the password
        assert labels[LABEL_OWNER] == svc.deployer.marks.mark(alice.key)
        assert "alice" not in labels[LABEL_OWNER] and alice.key not in labels.values()
        before = _fingerprint(engine, node.provider_id)

        data = await svc.export(alice, infra)
        assert node.provider_id in data  # Bob's data names Alice's container
        doc = json.loads(data)
        doc["nodes"][0]["adoption"] = "adopted"  # a claim in the data counts for nothing
        theirs = await svc.import_(bob, json.dumps(doc))
        made.append((bob, theirs))
        (imported,) = svc.store.nodes(theirs)
        assert imported.adoption == "detached" and imported.provider_id == node.provider_id
        assert "detached" in imported.log

        attempts = {
            "stop": lambda: svc.power(bob, theirs, "stop", imported.vm_id),
            "stop all": lambda: svc.power(bob, theirs, "stop"),
            "start": lambda: svc.power(bob, theirs, "start", imported.vm_id),
            "reboot": lambda: svc.power(bob, theirs, "reboot", imported.vm_id),
            "remove": lambda: svc.remove_nodes(bob, theirs, [imported.vm_id]),
            "snapshot": lambda: svc.snapshot(bob, theirs, imported.vm_id, 0, "stolen"),
            "alter": lambda: svc.alter(bob, theirs, imported.vm_id,
                                       "system box ( memory.size >= 128m )"),
            "reconfigure": lambda: svc.reconfigure(bob, theirs, None, [imported.vm_id]),
        }
        for name, attempt in attempts.items():
            with pytest.raises(Detached, match=f"VM {imported.vm_id} is detached") as refused:
                await attempt()
            assert "owner mark" in str(refused.value), name
        assert Detached.status == 409  # what the API and the dashboard answer for it
        assert svc.store.snapshots(theirs) == []
        await svc.retry(bob, theirs)  # never relaunches or configures a detached node
        assert await svc.wait_reconciled(theirs, timeout=60)

        # destroying Bob's import only forgets the node
        await svc.destroy(bob, theirs)
        made.remove((bob, theirs))
        assert _fingerprint(engine, node.provider_id) == before
        assert before[0] == "running"
        assert svc.store.node(infra, node.vm_id).state == "configured"
    finally:
        for who, infra_id in reversed(made):
            await svc.destroy(who, infra_id, force=True)


async def test_alice_importing_her_own_export_adopts_it(engine_url, local_service):
    svc = local_service
    engine = docker.DockerClient(base_url=engine_url)
    alice = identify(ALICE)[0]
    made: list[str] = []
    try:
        infra = await svc.create(alice, ONE_NODE)
        made.append(infra)
        assert await svc.wait_reconciled(infra, timeout=180)
        (node,) = svc.store.nodes(infra)
        data = await svc.export(alice, infra, delete=True)
        made.remove(infra)
        mine = await svc.import_(alice, data)
        made.append(mine)
        (imported,) = svc.store.nodes(mine)
        assert imported.adoption == "adopted"
        await svc.power(alice, mine, "stop", imported.vm_id)
        assert engine.containers.get(node.provider_id).status == "exited"
        # the start-up sweep spares it, though its label names the exported (deleted) one
        svc.scheduler.remove_orphans()
        assert engine.containers.get(node.provider_id).status == "exited"  # still there
        await svc.destroy(alice, mine)
        made.remove(mine)
        with pytest.raises(docker.errors.NotFound):
            engine.containers.get(node.provider_id)
        # nor is the exported infrastructure's network left behind: nothing else would remove
        # it before the next start-up sweep
        for gone in (infra, mine):
            label = f"{LABEL_INFRASTRUCTURE}={gone}"
            assert engine.networks.list(filters={"label": label}) == [], gone
    finally:
        for infra_id in made:
            await svc.destroy(alice, infra_id, force=True)


def _with_volume(name: str, volume: str) -> Compute:
    compute = Compute(name=name, type="tosca.nodes.Compute")
    compute.volumes.append(Volume(name="disk", index=1, volume_id=volume, mount_path="/data"))
    return compute


@pytest.mark.parametrize("owner", ["nobody", "another owner"])
def test_volume_id_must_name_a_volume_of_ones_own(engine_url, owner):
    marks = OwnerMarks.ephemeral()
    provider = LocalProvider(base_url=engine_url)
    engine = docker.DockerClient(base_url=engine_url)
    labels = {} if owner == "nobody" else {LABEL_OWNER: marks.mark("someone-else")}
    victim = engine.volumes.create(f"orbis-e2e-victim-{uuid.uuid4().hex[:8]}", labels=labels)
    infra = str(uuid.uuid4())
    compute = _with_volume("thief", victim.name)
    spec = NodeSpec(infrastructure_id=infra, vm_id=0, name="thief", compute=compute,
                    owner_mark=marks.mark("me"))  # fmt: skip
    try:
        with pytest.raises(ProviderError, match="volume_id may only name your own volumes"):
            provider.launch(spec)
        assert engine.containers.list(all=True, filters={"name": f"orbis-{infra}"}) == []
        # the owner's own volume is accepted
        mine = engine.volumes.create(f"orbis-e2e-mine-{uuid.uuid4().hex[:8]}",
                                     labels={LABEL_OWNER: marks.mark("me")})  # fmt: skip
        try:
            ok = NodeSpec(infrastructure_id=infra, vm_id=1, name="owner",
                          owner_mark=spec.owner_mark, compute=_with_volume("owner", mine.name))
            machine = provider.launch(ok)
            mounts = engine.containers.get(machine.provider_id).attrs["Mounts"]
            assert {m["Destination"]: m.get("Name") for m in mounts}["/data"] == mine.name
        finally:
            provider.cleanup(infra)
            mine.remove(force=True)
    finally:
        provider.cleanup(infra)  # first: a node that (wrongly) mounted the victim holds it
        victim.reload()  # untouched
        victim.remove(force=True)
