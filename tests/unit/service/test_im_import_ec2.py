"""An IM export's EC2 VM is adopted only when the importer's own EC2 line sees it (issue 12
§3, the adoption rule of service/adoption.py), on moto's real EC2 server: the instance is
launched there first, as IM would have launched it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from cryptography.fernet import Fernet

from orbis.auth import identify
from orbis.providers.sim import SimProvider
from orbis.secrets import Sealer
from orbis.service import OrbisService
from orbis.store.repository import Store
from orbis.testing.im_export import RADL, cloud, infrastructure, rsa_key, vm, vm_info
from orbis.testing.standins.moto import moto_server

REGION = "eu-west-1"
IM_LINE = "type = InfrastructureManager; username = alice; password = a"
AWS_LINE = f"id = aws; type = EC2; username = AKIDALICE; password = alice-secret; region = {REGION}"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def instance(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A running instance in moto, as IM's EC2 connector names it ("region;instance-id")."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", endpoint)
    ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id="x",
                       aws_secret_access_key="y")  # fmt: skip
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    made = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t2.micro")
    return f"{REGION};{made['Instances'][0]['InstanceId']}"


@pytest.fixture
async def svc(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path / 'orbis.db'}")
    service = OrbisService(store, SimProvider(tmp_path / "cloud.db"), tmp_path / "work",
                           holder="test:1")  # fmt: skip
    service.configure_access(Sealer(Fernet.generate_key()))
    yield service
    await service.shutdown()


def export(provider_id: str) -> str:
    key = rsa_key()
    aws = cloud("aws", "EC2")
    return infrastructure([
        vm(0, "front", "configured", provider_id, aws,
           vm_info("front", "configured", key, public="54.0.0.1", private="172.31.0.4")),
        vm(1, "wn", "configured", f"{REGION};i-0123456789abcdef0", aws,
           vm_info("wn", "configured", key, public=None, private="172.31.0.5")),
    ], radl=RADL)  # fmt: skip


async def test_the_importers_own_ec2_line_adopts_what_it_sees(svc, instance: str) -> None:
    alice = identify(f"{IM_LINE}\\n{AWS_LINE}")[0]
    infra = await svc.import_(alice, export(instance))
    front, wn = svc.store.nodes(infra)
    assert (front.site, front.provider_id, front.adoption) == ("aws", instance, "adopted")
    # an instance the account does not have stays detached
    assert wn.adoption == "detached" and "VM 1 is detached" in wn.log


async def test_without_a_line_for_the_site_nothing_is_adopted(svc, instance: str) -> None:
    alice = identify(IM_LINE)[0]
    infra = await svc.import_(alice, export(instance))
    assert [n.adoption for n in svc.store.nodes(infra)] == ["detached", "detached"]
