"""Two real cloud APIs behind one infrastructure: an OpenStack site (the recorded-exchange
stand-in) whose project has room for one instance, then AWS EC2 (moto's server). Two nodes are
asked for: one lands on OpenStack, the other is refused there with Nova's quota error and falls
back to EC2; the node log says so. Each node's disk is saved as an image at its own site, and
destroy deletes the auto_delete ones. Destroy leaves nothing else at either site.

No SSH traffic is sent: the clouds' addresses are not ours, so `ssh_timeout` is 0 and the
nodes end `unconfigured` once launched, which is all this test is about."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from cryptography.fernet import Fernet

from orbis.auth import identify
from orbis.providers.base import LABEL_INFRASTRUCTURE
from orbis.providers.sim import SimProvider
from orbis.secrets import Sealer
from orbis.service import OrbisService
from orbis.store.repository import Store
from orbis.testing.standins.moto import moto_server
from orbis.testing.standins.openstack import OpenStackStandin

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    node:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {count: 2}}
        endpoint: {properties: {network_name: PUBLIC}}
        host: {properties: {num_cpus: 1, mem_size: 1 GB}}
        os: {properties: {distribution: ubuntu}}
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with moto_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        yield url


def line(fields: dict[str, str]) -> str:
    return "; ".join(f"{k} = {v}" for k, v in fields.items())


def ec2_instances(infra: str) -> list[dict]:
    """This infrastructure's live instances (moto keeps one account per test process)."""
    ec2 = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x",
                       aws_secret_access_key="y")  # fmt: skip
    found = ec2.describe_instances(Filters=[
        {"Name": "instance-state-name", "Values": ["pending", "running"]},
        {"Name": f"tag:{LABEL_INFRASTRUCTURE}", "Values": [infra]},
    ])  # fmt: skip
    return [i for r in found["Reservations"] for i in r["Instances"]]


def ec2_image_state(url: str) -> str | None:
    ec2 = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x",
                       aws_secret_access_key="y")  # fmt: skip
    found = ec2.describe_images(Filters=[{"Name": "image-id", "Values": [url.rsplit("/", 1)[1]]}])
    return found["Images"][0]["State"] if found["Images"] else None


async def test_quota_refusal_at_openstack_falls_back_to_ec2(aws, tmp_path: Path, db_url: str):
    with OpenStackStandin(quota={"instances": 1}) as cloud:
        store = Store(db_url)
        svc = OrbisService(store, SimProvider(tmp_path / "local.db"), tmp_path / "work")
        svc.configure_access(Sealer(Fernet.generate_key()))
        svc.sites.options = {
            "openstack": {**cloud.fast_options, "ssh_timeout": 0},
            "ec2": {"poll_interval": 0.01, "launch_timeout": 10, "cleanup_timeout": 10,
                    "max_attempts": 1, "ssh_timeout": 0},
        }  # fmt: skip
        await svc.resume()
        auth = (f"{ALICE}\n{line(cloud.auth_line())}\n"
                "id = aws; type = EC2; username = AK; password = SK; region = us-east-1")
        who = identify(auth)[0]
        try:
            infra = await svc.create(who, TEMPLATE)
            assert await svc.wait_reconciled(infra, timeout=120)
            nodes = svc.store.nodes(infra)
            assert sorted(n.site for n in nodes) == ["aws", "standin"], [n.log for n in nodes]
            assert all(n.provider_id for n in nodes)
            moved = next(n for n in nodes if n.site == "aws")
            assert "Site standin could not launch node" in moved.log
            assert "Quota exceeded" in moved.log and "trying aws" in moved.log
            assert len(ec2_instances(infra)) == 1 and len(cloud.owned()["servers"]) == 1
            # snapshots are made at each node's own site; auto_delete ones go with destroy
            here = next(n for n in nodes if n.site == "standin")
            kept = await svc.snapshot(who, infra, here.vm_id, 0, "kept")
            scratch = await svc.snapshot(who, infra, here.vm_id, 0, "scratch", auto_delete=True)
            ami = await svc.snapshot(who, infra, moved.vm_id, 0, "on-aws", auto_delete=True)
            assert kept.startswith("ost://") and ami.startswith("aws://us-east-1/ami-")
            glance = {i for i in cloud.images if f"/{i}" in kept + scratch}
            assert len(glance) == 2
            assert ec2_image_state(ami) == "available"
            await svc.destroy(who, infra)
            assert ec2_instances(infra) == []
            assert ec2_image_state(ami) is None
            assert kept.rsplit("/", 1)[1] in cloud.images
            assert scratch.rsplit("/", 1)[1] not in cloud.images
            assert not any(cloud.owned().values()), cloud.owned()
        finally:
            await svc.shutdown()
