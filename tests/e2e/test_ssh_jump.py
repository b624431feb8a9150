"""A node without a public address is configured through one that has one (SSH jump), as on a
cloud where only the front-end gets a floating IP. The local back-end is told not to reach
private addresses directly; the test then checks on the private node that Ansible's SSH
session came from the public node's address."""

from __future__ import annotations

import docker
import pytest

from orbis.auth import identify
from orbis.providers.base import LABEL_INFRASTRUCTURE
from orbis.testing.engine_read import container_read

pytestmark = [pytest.mark.e2e]

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    front:
      type: tosca.nodes.Compute
      capabilities:
        endpoint: {properties: {network_name: PUBLIC}}
    wn:
      type: tosca.nodes.Compute
      interfaces:
        Standard:
          configure:
            implementation: |
              - hosts: all
                gather_facts: false
                tasks:
                  - name: where the SSH session comes from
                    ansible.builtin.shell: echo "$SSH_CONNECTION" > /root/via
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"


async def test_private_node_is_configured_through_the_public_one(engine_url, local_service):
    svc = local_service
    svc.provider.private_reachable = False  # behave like a cloud: private addresses are not ours
    who = identify(ALICE)[0]
    infra = None
    try:
        infra = await svc.create(who, TEMPLATE)
        assert await svc.wait_reconciled(infra, timeout=300)
        nodes = {n.name: n for n in svc.store.nodes(infra)}
        front, wn = nodes["front"], nodes["wn"]
        assert (front.state, wn.state) == ("configured", "configured"), wn.log
        assert front.public_ip and not wn.public_ip
        assert wn.jump == f"root@{front.public_ip}:22"
        assert f"through root@{front.public_ip}:22" in wn.log
        engine = docker.DockerClient(base_url=engine_url)
        (container,) = engine.containers.list(
            filters={"label": [f"{LABEL_INFRASTRUCTURE}={infra}", "orbis.vm_id=1"]}
        )
        via = container_read(container, ["cat", "/root/via"])[1].split()
        assert via and via[0] == front.private_ip, via  # the client was the front-end
    finally:
        if infra:
            await svc.destroy(who, infra)
