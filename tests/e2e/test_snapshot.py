"""A disk snapshot on the local back-end is a real image of the node's file system: a file
written by the node's configuration is there in a node booted from it, the image carries none
of our node labels (a container run from it by hand is not one of ours), and an auto_delete
snapshot is removed with its infrastructure."""

from __future__ import annotations

import docker
import pytest

from orbis.auth import identify
from orbis.providers.base import LABEL_INFRASTRUCTURE
from orbis.testing.engine_read import container_read

pytestmark = [pytest.mark.e2e]

CONFIGURED = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    golden:
      type: tosca.nodes.Compute
      interfaces:
        Standard:
          configure:
            implementation: |
              - hosts: all
                gather_facts: false
                tasks:
                  - ansible.builtin.copy: {dest: /etc/baked, content: "from the golden node\\n"}
"""
FROM_IMAGE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    clone:
      type: tosca.nodes.Compute
      capabilities:
        os: {properties: {image: '%s'}}
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"


async def test_a_snapshot_boots_a_copy_and_auto_delete_removes_it(engine_url, local_service):
    svc = local_service
    provider = svc.provider
    engine = docker.DockerClient(base_url=engine_url)
    who = identify(ALICE)[0]
    made: list[str] = []
    try:
        golden = await svc.create(who, CONFIGURED)
        made.append(golden)
        assert await svc.wait_reconciled(golden, timeout=300)
        assert svc.store.nodes(golden)[0].state == "configured", svc.store.nodes(golden)[0].log
        url = await svc.snapshot(who, golden, 0, 0, "Golden Node", auto_delete=True)
        assert url.startswith("docker://localhost/golden-node:")
        image = engine.images.get(url.removeprefix("docker://"))
        assert not image.labels.get(LABEL_INFRASTRUCTURE)  # blanked: not a node of ours
        assert any(i.url == url for i in provider.images())  # in the site catalogue

        clone = await svc.create(who, FROM_IMAGE % url)
        made.append(clone)
        assert await svc.wait_reconciled(clone, timeout=300)
        (node,) = svc.store.nodes(clone)
        assert node.state == "configured", node.log
        (container,) = engine.containers.list(
            filters={"label": f"{LABEL_INFRASTRUCTURE}={clone}"})  # fmt: skip
        assert container.image.id == image.id
        assert container_read(container, ["cat", "/etc/baked"]) == (0, "from the golden node\n")

        await svc.destroy(who, clone)  # first: the image is in use while the clone runs
        made.remove(clone)
        await svc.destroy(who, golden)
        made.remove(golden)
        with pytest.raises(docker.errors.ImageNotFound):
            engine.images.get(url.removeprefix("docker://"))
    finally:
        for infra in made:
            await svc.destroy(who, infra, force=True)
