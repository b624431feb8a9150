"""The local provider against a real engine: system containers that boot systemd and take SSH."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncssh
import docker
import pytest

from orbis.model.states import NodeState
from orbis.providers.base import LABEL_INFRASTRUCTURE, Machine, NodeSpec, NotFound
from orbis.providers.local import LocalProvider

KeyPair = Any  # conftest.KeyPair: private_path, public, key

pytestmark = pytest.mark.e2e


def ssh_run(ip: str, key: KeyPair, command: str, timeout: float = 60) -> str:
    """Run `command` as root over SSH, retrying until sshd answers or `timeout` passes."""

    async def attempt() -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                async with asyncssh.connect(
                    ip,
                    username="root",
                    client_keys=[key.key],
                    known_hosts=None,
                    connect_timeout=5,
                ) as conn:
                    result = await conn.run(command, check=True, timeout=timeout)
                    return str(result.stdout)
            except (TimeoutError, OSError, asyncssh.DisconnectError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    return asyncio.run(attempt())


class Cluster:
    def __init__(self, provider: LocalProvider, infra_id: str, key: KeyPair) -> None:
        self.provider, self.infra_id, self.key = provider, infra_id, key
        self.machines: dict[int, Machine] = {}

    def spec(self, vm_id: int, name: str, **kw: object) -> NodeSpec:
        return NodeSpec(
            infrastructure_id=self.infra_id,
            vm_id=vm_id,
            name=name,
            ssh_public_key=self.key.public,
            **kw,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="module")
def cluster(engine_url: str, ssh_keypair: KeyPair) -> Iterator[Cluster]:
    provider = LocalProvider(base_url=engine_url)
    c = Cluster(provider, f"e2e{uuid.uuid4().hex}", ssh_keypair)
    provider.prepare(c.infra_id)
    try:
        c.machines[0] = provider.launch(
            c.spec(0, "front", public=True, num_cpus=1, mem_size=512 * 2**20)
        )
        c.machines[1] = provider.launch(c.spec(1, "wn", hostname="worker-one"))
        yield c
    finally:
        provider.cleanup(c.infra_id)


def test_nodes_are_running_with_addresses(cluster: Cluster) -> None:
    front, wn = cluster.machines[0], cluster.machines[1]
    for m in (front, wn):
        assert m.state == NodeState.RUNNING
        assert m.private_ip and m.ssh_user == "root"
        assert m.infrastructure_id == cluster.infra_id
    assert front.public_ip == front.private_ip
    assert wn.public_ip is None
    assert front.private_ip != wn.private_ip


def test_ssh_login_and_systemd_pid1(cluster: Cluster) -> None:
    for vm_id, hostname in ((0, "front-0"), (1, "worker-one")):
        ip = cluster.machines[vm_id].private_ip
        assert ip
        out = ssh_run(
            ip,
            cluster.key,
            "readlink /proc/1/exe; hostname; systemctl is-system-running --wait || true",
        ).split()
        assert out[0].endswith("/systemd"), out
        assert out[1] == hostname
        assert out[2] in ("running", "degraded"), out


def test_nodes_reach_each_other(cluster: Cluster) -> None:
    front, wn = cluster.machines[0], cluster.machines[1]
    assert front.private_ip and wn.private_ip
    out = ssh_run(
        front.private_ip,
        cluster.key,
        f"ip -4 -o addr; ping -c1 -W2 {wn.private_ip} "
        f"2>/dev/null || (exec 3<>/dev/tcp/{wn.private_ip}/22 && echo reached)",
    )
    assert front.private_ip in out
    assert "reached" in out or "1 received" in out


def test_launch_is_idempotent(cluster: Cluster) -> None:
    again = cluster.provider.launch(cluster.spec(0, "front", public=True))
    assert again.provider_id == cluster.machines[0].provider_id
    owned = {
        m.provider_id
        for m in cluster.provider.list_owned()
        if m.infrastructure_id == cluster.infra_id
    }
    assert owned == {cluster.machines[0].provider_id, cluster.machines[1].provider_id}


def test_missing_image_fails_only_that_node(cluster: Cluster) -> None:
    with pytest.raises(NotFound, match="orbis-missing:nope"):
        cluster.provider.launch(cluster.spec(2, "bad", image="orbis-missing:nope"))
    assert (
        len([m for m in cluster.provider.list_owned() if m.infrastructure_id == cluster.infra_id])
        == 2
    )
    wn = cluster.provider.inspect(cluster.machines[1].provider_id)
    assert wn.state == NodeState.RUNNING and wn.private_ip
    assert ssh_run(wn.private_ip, cluster.key, "echo ok").strip() == "ok"


def test_stop_start_keeps_key(cluster: Cluster) -> None:
    p, pid = cluster.provider, cluster.machines[1].provider_id
    p.stop(pid)
    assert p.inspect(pid).state == NodeState.STOPPED
    p.start(pid)
    m = p.inspect(pid)
    assert m.state == NodeState.RUNNING and m.private_ip  # the address may change
    assert ssh_run(m.private_ip, cluster.key, "echo back").strip() == "back"
    cluster.machines[1] = m


def test_cleanup_leaves_nothing(cluster: Cluster, engine_url: str) -> None:
    cluster.provider.cleanup(cluster.infra_id)
    cluster.provider.cleanup(cluster.infra_id)  # twice is fine
    assert cluster.provider.inspect(cluster.machines[0].provider_id).state == NodeState.OFF
    cluster.provider.destroy(cluster.machines[0].provider_id)  # already gone is fine
    client = docker.DockerClient(base_url=engine_url)
    label = {"label": f"{LABEL_INFRASTRUCTURE}={cluster.infra_id}"}
    assert client.containers.list(all=True, filters=label) == []
    assert client.networks.list(filters=label) == []
