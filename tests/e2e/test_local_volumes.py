"""Data volumes on the local back-end, through the service: a BlockStorage attached to a node is
a named engine volume mounted where the template says, written by the node's configuration,
kept across stop/start and removed with its node; an existing volume named by volume_id is
mounted and never removed (it must be the owner's own: it carries their mark); a volume_id
that names nothing fails its node with a clear error.
At the provider level: host paths and swap disks are warned about, not mounted, and an
infrastructure with only a volume left is still found and cleaned up."""

from __future__ import annotations

import uuid

import docker
import pytest

from orbis import config
from orbis.auth import identify
from orbis.configure import storage
from orbis.model.infrastructure import Compute, Volume
from orbis.providers.base import LABEL_INFRASTRUCTURE, LABEL_NODE, LABEL_OWNER, NodeSpec
from orbis.providers.local import LocalProvider, network_name, volume_name
from orbis.testing.engine_read import container_read

pytestmark = [pytest.mark.e2e]

ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"
ATTACH = "relationship: {type: AttachesTo, properties: {location: %s}}"
TEMPLATE = f"""tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    my_storage:
      type: tosca.nodes.BlockStorage
      properties: {{size: 1 GB}}
    server:
      type: tosca.nodes.Compute
      requirements:
        - local_storage: {{node: my_storage, {ATTACH % "/data"}}}
      interfaces:
        Standard:
          configure:
            implementation: |
              - hosts: all
                gather_facts: false
                tasks:
                  - ansible.builtin.copy: {{dest: /data/hello, content: "kept\\n"}}
    shared:
      type: tosca.nodes.BlockStorage
      properties: {{volume_id: 'docker://%(existing)s'}}
    scratch:
      type: tosca.nodes.BlockStorage
      properties: {{size: 2 GB}}
    client:
      type: tosca.nodes.Compute
      requirements:
        - local_storage: {{node: shared, {ATTACH % "/srv/shared"}}}
        - local_storage: {{node: scratch, relationship: AttachesTo}}
"""
MISSING = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    fresh:
      type: tosca.nodes.BlockStorage
      properties: {size: 1 GB}
    gone:
      type: tosca.nodes.BlockStorage
      properties: {volume_id: '%s'}
    lost:
      type: tosca.nodes.Compute
      requirements:
        - local_storage: {node: fresh, relationship: AttachesTo}
        - local_storage: {node: gone, relationship: AttachesTo}
"""


def _ours(engine: docker.DockerClient, infra: str) -> list[str]:
    """Names of the volumes labelled with the infrastructure (label re-checked: podman OR-s
    label filters)."""
    found = engine.volumes.list(filters={"label": f"{LABEL_INFRASTRUCTURE}={infra}"})
    return sorted(v.name for v in found if v.attrs["Labels"].get(LABEL_INFRASTRUCTURE) == infra)


def _sh(container, command: str) -> tuple[int, str]:
    result = container.exec_run(["sh", "-c", command])
    return result.exit_code, result.output.decode().strip()


def _read(container, path: str) -> tuple[int, str]:
    """A file's text (asked again when the exec API hands back nothing: engine_read says why)."""
    code, text = container_read(container, ["cat", path])
    return code, text.strip()


async def test_volumes_are_mounted_kept_and_removed_with_their_node(engine_url, local_service):
    svc = local_service
    engine = docker.DockerClient(base_url=engine_url)
    who = identify(ALICE)[0]
    tag = uuid.uuid4().hex[:8]
    # made outside this infrastructure (not labelled with it), but Alice's own: her mark
    existing = engine.volumes.create(f"orbis-e2e-existing-{tag}",
                                     labels={LABEL_OWNER: svc.deployer.marks.mark(who.key)})
    made: list[str] = []
    try:
        infra = await svc.create(who, TEMPLATE % {"existing": existing.name})
        made.append(infra)
        assert await svc.wait_reconciled(infra, timeout=300)
        nodes = {n.name: n for n in svc.store.nodes(infra)}
        server, client = nodes["server"], nodes["client"]
        assert (server.state, client.state) == ("configured", "configured"), server.log
        assert "Warning: data volume sizes are not enforced on the local back-end" in server.log
        own = volume_name(infra, "server", server.vm_id, 1)
        scratch = volume_name(infra, "client", client.vm_id, 2)
        assert _ours(engine, infra) == sorted([own, scratch])  # the existing one is not ours
        labels = engine.volumes.get(own).attrs["Labels"]
        assert labels[LABEL_NODE] == f"server.{server.vm_id}"

        def container(vm_id: int):
            return engine.containers.get(svc.store.node(infra, vm_id).provider_id)

        box = container(server.vm_id)
        assert _sh(box, "mountpoint -q /data") == (0, "")
        assert _read(box, "/data/hello") == (0, "kept")
        assert {m["Destination"]: m.get("Name") for m in box.attrs["Mounts"]}["/data"] == own
        # the built-in disk step ran on the node (through Ansible) and found /data mounted,
        # and so does the script run over one SSH command (alter's path)
        assert "Step server_disks: ok" in svc.store.node(infra, server.vm_id).log
        row = svc.store.node(infra, server.vm_id)
        disks = storage.mountable(svc.template(svc.store.get(infra)).computes["server"])
        done = await svc.deployer.prepare_disks(svc.store.get(infra), row, disks)
        assert done.startswith("disk 1 (/dev/") and done.endswith("): already mounted"), done

        # the existing volume at the template's path, the new one at /mnt/disk<index>
        other = container(client.vm_id)
        mounts = {m["Destination"]: m.get("Name") for m in other.attrs["Mounts"]}
        assert mounts["/srv/shared"] == existing.name
        assert mounts["/mnt/disk2"] == scratch
        assert _sh(other, "mountpoint -q /srv/shared && echo shared > /srv/shared/note")[0] == 0

        # stop/start keeps the data
        await svc.power(who, infra, "stop")
        assert container(server.vm_id).status == "exited"
        await svc.power(who, infra, "start")
        box = container(server.vm_id)
        assert box.status == "running"
        assert _read(box, "/data/hello") == (0, "kept")

        # scale down: the node's own volume goes with it, the others stay
        await svc.remove_nodes(who, infra, [server.vm_id], context=False)
        assert _ours(engine, infra) == [scratch]

        await svc.destroy(who, infra)
        made.remove(infra)
        assert _ours(engine, infra) == []
        existing.reload()  # still there, with what the node wrote in it
        probe = engine.containers.run(
            config.load().node_image,
            ["cat", "/v/note"],
            volumes={existing.name: {"bind": "/v", "mode": "ro"}},
            remove=True,
        )
        assert probe == b"shared\n"
    finally:
        for infra_id in made:
            await svc.destroy(who, infra_id, force=True)
        existing.remove(force=True)


async def test_a_missing_volume_id_fails_its_node(engine_url, local_service):
    svc = local_service
    engine = docker.DockerClient(base_url=engine_url)
    who = identify(ALICE)[0]
    absent = f"orbis-e2e-absent-{uuid.uuid4().hex[:8]}"
    infra = None
    try:
        infra = await svc.create(who, MISSING % f"/var/lib/volumes/{absent}")
        assert await svc.wait_reconciled(infra, timeout=120)
        (lost,) = svc.store.nodes(infra)
        assert lost.state == "failed", lost.log
        assert f"volume '{absent}'" in lost.error and "does not exist" in lost.error, lost.error
        assert _ours(engine, infra) == []  # not even its disk.1: checked first
        assert (
            engine.containers.list(all=True, filters={"label": f"{LABEL_INFRASTRUCTURE}={infra}"})
            == []
        )
    finally:
        if infra:
            await svc.destroy(who, infra, force=True)


def test_host_paths_and_swap_are_warned_and_leftover_volumes_are_swept(engine_url):
    """Provider level: a host-path device gets a named volume (with a warning), a swap disk is
    not mounted (warning); an infrastructure with only a volume left is still ours, and its
    cleanup removes it."""
    provider = LocalProvider(base_url=engine_url)
    provider.installation = f"e2e-{uuid.uuid4().hex[:8]}"  # see only what this test makes
    engine = docker.DockerClient(base_url=engine_url)
    infra = str(uuid.uuid1())
    compute = Compute(name="box", type="tosca.nodes.Compute")
    compute.volumes = [
        Volume(name="disk.1", index=1, device="/etc", mount_path="/data"),
        Volume(name="disk.2", index=2, fs_type="swap"),
    ]
    spec = NodeSpec(infrastructure_id=infra, vm_id=0, name="box", compute=compute)
    try:
        machine = provider.launch(spec)
        assert len(machine.warnings) == 2, machine.warnings
        assert "device /etc is a host path" in machine.warnings[0]
        assert "disk.2: swap disks are not supported" in machine.warnings[1]
        (box,) = engine.containers.list(filters={"label": f"{LABEL_INFRASTRUCTURE}={infra}"})
        mounts = {m["Destination"]: m for m in box.attrs["Mounts"]}
        assert set(mounts) == {"/data"}  # no swap disk, no host /etc
        assert mounts["/data"]["Type"] == "volume"
        assert mounts["/data"].get("Name") == volume_name(infra, "box", 0, 1)
        assert _sh(box, "ls /data") == (0, "")  # not the host's /etc

        box.remove(force=True)  # as if a cleanup stopped half-way: only the volume is left
        engine.networks.get(network_name(infra)).remove()
        assert infra in provider.owned_infrastructures()
        provider.cleanup(infra)
        assert _ours(engine, infra) == []
        assert infra not in provider.owned_infrastructures()
    finally:
        provider.cleanup(infra)
