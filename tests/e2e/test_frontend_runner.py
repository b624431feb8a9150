"""A server without a container engine (its back-end here is the simulated cloud) configures
a cloud infrastructure from the infrastructure's own front-end node, as IM's contextualization
agent does on the master VM: ansible-core is installed there from the node's mirror, the plays
run there, and what a hostile play aims at "localhost" lands on the user's front-end, never on
the service host. The cloud is the OpenStack stand-in, whose servers are real containers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from orbis.auth import identify
from orbis.providers.sim import SimProvider
from orbis.secrets import Sealer
from orbis.service import OrbisService
from orbis.store.repository import Store
from orbis.testing.standins.openstack import OpenStackStandin
from orbis.testing.standins.openstack.boot import ContainerBoot

pytestmark = [pytest.mark.e2e]

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    front:
      type: tosca.nodes.Compute
      capabilities:
        endpoint: {properties: {network_name: PUBLIC}}
        host: {properties: {num_cpus: 1, mem_size: 1 GB}}
        os: {properties: {distribution: ubuntu}}
      interfaces:
        Standard:
          configure:
            implementation: &play |
              - hosts: all
                gather_facts: false
                tasks:
                  - name: a mark on each node
                    ansible.builtin.shell: echo "$(hostname -I)" > ~/configured
                  - name: hostile, aimed at the controller
                    ansible.builtin.shell: echo "$(hostname)" >> MARK
                    delegate_to: localhost
    wn:
      type: tosca.nodes.Compute
      capabilities:
        host: {properties: {num_cpus: 1, mem_size: 1 GB}}
        os: {properties: {distribution: ubuntu}}
      interfaces:
        Standard:
          configure:
            implementation: *play
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"


@pytest.fixture
def cloud(engine_url: str) -> Iterator[OpenStackStandin]:
    with OpenStackStandin(boot=ContainerBoot(engine_url)) as standin:
        yield standin


async def test_plays_run_on_the_front_end_when_the_server_has_no_engine(cloud, tmp_path: Path):
    boot = cloud.boot
    assert boot is not None
    mark = Path("/tmp") / f"orbis-frontend-{secrets.token_hex(6)}"
    svc = OrbisService(Store(f"sqlite:///{tmp_path / 'orbis.db'}"),
                       SimProvider(tmp_path / "sim.db"), tmp_path / "work")  # fmt: skip
    svc.configure_access(Sealer(Fernet.generate_key()))
    svc.sites.options = {"openstack": {**cloud.fast_options, "timeout": 60}}
    assert not svc.deployer.runners.uses_engine  # no engine of its own: the front-end runs
    await svc.resume()
    who = identify(f"{ALICE}\n" + "; ".join(f"{k} = {v}" for k, v in cloud.auth_line().items()))[0]
    infra = None
    try:
        infra = await svc.create(who, TEMPLATE.replace("MARK", str(mark)))
        assert await svc.wait_reconciled(infra, timeout=300)
        nodes = {n.name: n for n in svc.store.nodes(infra)}
        front, wn = nodes["front"], nodes["wn"]
        assert (front.state, wn.state) == ("configured", "configured"), (front.log, wn.log)
        assert "front-end node" in front.log or "front-end node" in svc.contmsg(who, infra)
        for node in (front, wn):
            code, text = boot.exec(node.provider_id or "", "cat /opt/cloudadm/configured")
            assert code == 0 and node.private_ip in text.split(), (node.name, text)
        # the hostile task ran on the front-end (once per node), never on the service host
        assert not mark.exists()
        code, text = boot.exec(front.provider_id or "", f"cat {mark}")
        assert code == 0 and len(text.split()) == 2, text
        # the runner's files, its copy of the key among them, are gone from the node
        code, text = boot.exec(
            front.provider_id or "", "ls -d /var/tmp/orbis-runner-* 2>/dev/null; true"
        )
        assert "orbis-runner" not in text, text
    finally:
        if infra:
            await svc.destroy(who, infra)
        await svc.shutdown()
        mark.unlink(missing_ok=True)
