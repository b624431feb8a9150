"""A 2-node infrastructure on "OpenStack", configured for real: the stand-in boots each Nova
server as a system container from the node image, with the Nova key pair and the user_data
Orbis sends (cloud-config: the `cloudadm` sudo user and its key), fixed IPs on a tenant network
the host cannot reach and a floating IP on the "public" pool network. Orbis waits for SSH with
the provider's own ssh_timeout, reaches the private node through the public one, runs Ansible on
both (as cloudadm, with sudo), gives the addresses as outputs and, on destroy, leaves nothing:
no servers, networks, floating IPs, volumes or key pairs at the cloud, no containers or podman
networks in the engine."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from cryptography.fernet import Fernet

from orbis.auth import identify
from orbis.providers.base import LABEL_INFRASTRUCTURE
from orbis.providers.local import LocalProvider
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
      requirements:
        - local_storage:
            node: data
            relationship: {type: tosca.relationships.AttachesTo}
      interfaces:
        Standard:
          configure:
            implementation: &play |
              - hosts: all
                gather_facts: false
                tasks:
                  - name: where the SSH session came from (sudo would reset the environment)
                    ansible.builtin.shell: echo "$(id -un) $SSH_CONNECTION" > ~/via
                  - name: leave a mark as root
                    become: true
                    ansible.builtin.shell: echo "$(id -un) $SUDO_USER" > /etc/orbis-configured
    wn:
      type: tosca.nodes.Compute
      capabilities:
        host: {properties: {num_cpus: 1, mem_size: 1 GB}}
        os: {properties: {distribution: ubuntu}}
      interfaces:
        Standard:
          configure:
            implementation: *play
    data:
      type: tosca.nodes.BlockStorage
      properties: {size: 1 GB}
  outputs:
    front_public: {value: {get_attribute: [front, public_address, 0]}}
    front_private: {value: {get_attribute: [front, private_address, 0]}}
    wn_private: {value: {get_attribute: [wn, private_address, 0]}}
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"


@pytest.fixture
def cloud(engine_url: str) -> Iterator[OpenStackStandin]:
    boot = ContainerBoot(engine_url)
    with OpenStackStandin(boot=boot) as standin:
        yield standin
    # closing the stand-in removes its floating-IP pool's network too: nothing labelled is left
    label = f"orbis.standin={boot.tag}"
    engine = docker.DockerClient(base_url=engine_url)
    assert engine.containers.list(all=True, filters={"label": label}) == []
    assert engine.networks.list(filters={"label": label}) == []
    assert engine.volumes.list(filters={"label": label}) == []


def sshd_answers(address: str) -> bool:
    """True if an SSH server greets us at address:22 (a bare TCP connect proves nothing here:
    the host's default route may lead to a proxy that accepts any connection)."""
    try:
        with socket.create_connection((address, 22), timeout=2) as conn:
            conn.settimeout(2)
            return conn.recv(8).startswith(b"SSH-")
    except OSError:
        return False


async def test_two_nodes_configured_on_openstack_through_the_public_one(
    cloud, engine_url: str, tmp_path: Path
) -> None:
    boot = cloud.boot
    assert boot is not None
    svc = OrbisService(Store(f"sqlite:///{tmp_path / 'orbis.db'}"),
                       LocalProvider(base_url=engine_url), tmp_path / "work")  # fmt: skip
    # the server's own engine runs the recipe runner (the cloud nodes are configured from it)
    svc.configure_access(Sealer(Fernet.generate_key()))
    # fast polling of the API; ssh_timeout stays the provider's own (a real wait for SSH)
    svc.sites.options = {"openstack": {**cloud.fast_options, "timeout": 60}}
    await svc.resume()
    auth = f"{ALICE}\n" + "; ".join(f"{k} = {v}" for k, v in cloud.auth_line().items())
    who = identify(auth)[0]
    infra = None
    try:
        infra = await svc.create(who, TEMPLATE)
        assert await svc.wait_reconciled(infra, timeout=120)
        nodes = {n.name: n for n in svc.store.nodes(infra)}
        front, wn = nodes["front"], nodes["wn"]
        assert (front.state, wn.state) == ("configured", "configured"), (front.log, wn.log)
        assert front.site == wn.site == "standin"
        # addresses: a floating IP for the front-end only; the worker is private-only
        assert front.public_ip and not wn.public_ip and wn.private_ip
        (fip,) = cloud.floatingips.values()
        assert fip["floating_ip_address"] == front.public_ip
        front_box = boot.client.containers.get(boot.container(front.provider_id or ""))
        on = {v["IPAddress"] for v in front_box.attrs["NetworkSettings"]["Networks"].values()}
        assert on == {front.public_ip, front.private_ip}  # what Neutron says is what it has
        assert sshd_answers(front.public_ip) and not sshd_answers(wn.private_ip)
        # the worker was reached through the front-end, and configured over that jump
        assert wn.jump == f"cloudadm@{front.public_ip}:22", wn.log
        assert f"through cloudadm@{front.public_ip}:22" in wn.log
        for node, source in ((front, None), (wn, front.private_ip)):
            code, mark = boot.exec(node.provider_id or "", "cat /etc/orbis-configured")
            assert code == 0 and mark.split() == ["root", "cloudadm"], mark  # cloud-config sudo
            code, via = boot.exec(node.provider_id or "", "cat /opt/cloudadm/via")
            assert code == 0 and via.split()[0] == "cloudadm", via
            if source:
                assert via.split()[1] == source, via  # the SSH session came from the front-end
            # key injection: cloud-config's user and Nova's key pair both hold the key
            infra_key = (svc.store.get(infra) or pytest.fail("gone")).ssh_public_key.split()[1]
            for path in ("/opt/cloudadm/.ssh/authorized_keys", "/root/.ssh/authorized_keys"):
                code, keys = boot.exec(node.provider_id or "", f"cat {path}")
                assert code == 0 and infra_key in keys, (path, keys)
        # the data disk: a Cinder volume mapped at boot, in the container at /mnt/vdb
        (volume,) = cloud.volumes.values()
        assert volume["_server"] == front.provider_id and volume["_device"] == "/dev/vdb"
        code, mounts = boot.exec(front.provider_id or "", "cat /proc/mounts")
        assert " /mnt/vdb " in mounts
        outputs = svc.outputs(who, infra)
        assert outputs == {"front_public": front.public_ip, "front_private": front.private_ip,
                           "wn_private": wn.private_ip}  # fmt: skip
        await svc.destroy(who, infra)
        engine = docker.DockerClient(base_url=engine_url)
        ours = {"label": f"{LABEL_INFRASTRUCTURE}={infra}"}
        infra = None
        # the recipe runner and its network on the server's own engine are gone too
        assert engine.containers.list(all=True, filters=ours) == []
        assert engine.networks.list(filters=ours) == []
        assert not any(cloud.owned().values()), cloud.owned()
        assert not cloud.keypairs and not cloud.volumes and not cloud.ports
        assert not cloud.floatingips
        left = boot.leftovers()
        assert left["containers"] == [] and left["volumes"] == [], left
        # only the cloud's own floating-IP pool network is left (it goes with the stand-in)
        assert len(left["networks"]) == 1, left
    finally:
        if infra:
            await svc.destroy(who, infra)
        await svc.shutdown()
