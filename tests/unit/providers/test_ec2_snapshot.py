"""Disk snapshots on the EC2 provider (IM's PUT .../vms/<vm>/disks/<n>/snapshot): boto3 over real
HTTP against moto's EC2 server, as in test_ec2.py. moto keeps one state for the whole process:
every check looks only at the ids these tests made."""

from __future__ import annotations

import re
import uuid
from typing import Any

import botocore.exceptions
import pytest

from orbis.model.infrastructure import Compute, Volume
from orbis.model.states import NodeState
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    NodeSpec,
    NotFound,
    ProviderAuthError,
    ProviderError,
    QuotaExceeded,
    Transient,
)
from orbis.providers.ec2 import EC2Provider, error_class, parse_image
from orbis.testing.standins.moto import ec2_error_server

from .ec2_common import AUTH, FAST, GB, KEY, REGION, make_provider, raw


@pytest.fixture
def provider(aws: str) -> EC2Provider:
    return make_provider("inst-snap")


def spec(image: str, *, infra: str | None = None, vm_id: int = 0, **compute: Any) -> NodeSpec:
    node = Compute(name="front", type="tosca.nodes.Compute", image=image, **compute)
    return NodeSpec(
        infrastructure_id=infra or str(uuid.uuid4()),
        vm_id=vm_id,
        name="front",
        ssh_public_key=KEY,
        compute=node,
    )


def instance(provider_id: str) -> dict[str, Any]:
    region, _, iid = provider_id.partition(";")
    return dict(
        raw(region).describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    )


def image(ami_id: str) -> dict[str, Any] | None:
    """The image as EC2 describes it; None once it is deregistered."""
    try:
        found = raw().describe_images(ImageIds=[ami_id])["Images"]
    except botocore.exceptions.ClientError as err:
        assert err.response["Error"]["Code"].startswith("InvalidAMIID.")
        return None
    return dict(found[0]) if found else None


def snapshots_of(described: dict[str, Any]) -> list[str]:
    return [
        m["Ebs"]["SnapshotId"]
        for m in described["BlockDeviceMappings"]
        if m.get("Ebs", {}).get("SnapshotId")
    ]


def snapshot_exists(snapshot_id: str) -> bool:
    try:
        return bool(raw().describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"])
    except botocore.exceptions.ClientError as err:
        assert err.response["Error"]["Code"] == "InvalidSnapshot.NotFound"
        return False


def tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def made_from(iid: str) -> list[dict[str, Any]]:
    """The images made of one instance."""
    source = [{"Name": "source-instance-id", "Values": [iid]}]
    return list(raw().describe_images(Owners=["self"], Filters=source)["Images"])


def sent(provider: EC2Provider, action: str) -> list[dict[str, Any]]:
    """The parameters of every `action` request the provider's client sends from now on (read
    through botocore's own event hooks: the request itself is not altered)."""
    requests: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        requests.append(dict(params))

    provider.client().meta.events.register(f"before-parameter-build.ec2.{action}", record)
    return requests


def name() -> str:
    return f"orbis-snap-{uuid.uuid4().hex[:8]}"


# -- disk 0 -----------------------------------------------------------------------------------


def test_boot_disk_becomes_an_available_tagged_image_while_the_node_runs(
    provider: EC2Provider, ami: str
) -> None:
    data = [Volume("disk.1", index=1, size=GB, device="/dev/vdb")]
    node = spec(f"aws://{REGION}/{ami}", public=True, volumes=data)
    m = provider.launch(node)
    before = instance(m.provider_id)
    requests = sent(provider, "CreateImage")
    title = name()

    url = provider.snapshot(m.provider_id, 0, title)

    match = re.fullmatch(rf"aws://{REGION}/(ami-[0-9a-f]+)", url)
    assert match, url
    new = match.group(1)
    assert parse_image(url, "us-east-1") == (REGION, new)  # the form launch reads
    described = image(new)
    assert described is not None and described["State"] == "available"
    assert described["Name"] == title
    assert described["SourceInstanceId"] == m.provider_id.split(";")[1]
    labels = {LABEL_INFRASTRUCTURE: node.infrastructure_id, LABEL_INSTALLATION: "inst-snap"}
    assert labels.items() <= tags(described).items()
    backing = raw().describe_snapshots(SnapshotIds=snapshots_of(described))["Snapshots"]
    assert backing and all(labels.items() <= tags(s).items() for s in backing)
    # the node kept running: not stopped, not rebooted (NoReboot, as IM does), same address
    [request] = requests
    assert request["NoReboot"] is True
    after = instance(m.provider_id)
    assert after["State"]["Name"] == "running" and not after.get("StateTransitionReason")
    assert after["PublicIpAddress"] == before["PublicIpAddress"]
    assert provider.inspect(m.provider_id).state == NodeState.RUNNING
    # only disk 0 was asked for: the data volume stays out of the image
    assert request["BlockDeviceMappings"] == [{"DeviceName": "/dev/sdb", "NoDevice": ""}]


def test_a_node_launched_from_the_snapshot_url_boots_that_image(
    provider: EC2Provider, ami: str
) -> None:
    m = provider.launch(spec(f"aws://{REGION}/{ami}"))
    url = provider.snapshot(m.provider_id, 0, name())
    new = parse_image(url, REGION)[1]
    assert new != ami

    clone = provider.launch(spec(url, disk_size=20 * GB))

    launched = instance(clone.provider_id)
    assert launched["ImageId"] == new
    assert clone.state == NodeState.RUNNING
    # its root disk comes from the snapshot behind the new image
    described = image(new)
    assert described is not None
    root = next(
        b for b in launched["BlockDeviceMappings"] if b["DeviceName"] == launched["RootDeviceName"]
    )
    volume = raw().describe_volumes(VolumeIds=[root["Ebs"]["VolumeId"]])["Volumes"][0]
    assert volume["SnapshotId"] in snapshots_of(described) and volume["Size"] == 20


def test_a_spot_nodes_request_id_names_its_instance(provider: EC2Provider, ami: str) -> None:
    node = spec(f"aws://{REGION}/{ami}", spot=True)
    m = provider.launch(node)
    [request] = raw().describe_spot_instance_requests(
        Filters=[{"Name": f"tag:{LABEL_INFRASTRUCTURE}", "Values": [node.infrastructure_id]}]
    )["SpotInstanceRequests"]
    url = provider.snapshot(f"{REGION};{request['SpotInstanceRequestId']}", 0, name())
    assert [i["ImageId"] for i in made_from(m.provider_id.split(";")[1])] == [
        parse_image(url, REGION)[1]
    ]


# -- disks that cannot become images ----------------------------------------------------------


def test_a_data_disk_is_a_clear_error_and_makes_no_image(provider: EC2Provider, ami: str) -> None:
    data = [Volume("disk.1", index=1, size=GB, device="/dev/vdb")]
    m = provider.launch(spec(f"aws://{REGION}/{ami}", volumes=data))
    with pytest.raises(ProviderError) as caught:
        provider.snapshot(m.provider_id, 1, name())
    assert type(caught.value) is ProviderError
    assert str(caught.value) == (
        "ec2: only the boot disk (0) can be saved as an image; disk 1 is a data volume"
    )
    assert made_from(m.provider_id.split(";")[1]) == []
    assert instance(m.provider_id)["State"]["Name"] == "running"


def test_a_disk_the_node_lacks_is_not_found(provider: EC2Provider, ami: str) -> None:
    data = [Volume("disk.1", index=1, size=GB, device="/dev/vdb")]
    with_data = provider.launch(spec(f"aws://{REGION}/{ami}", volumes=data))
    iid = with_data.provider_id.split(";")[1]
    with pytest.raises(NotFound, match=f"^ec2: instance {iid} has no disk 2$"):
        provider.snapshot(with_data.provider_id, 2, name())
    with pytest.raises(NotFound, match="has no disk -1"):
        provider.snapshot(with_data.provider_id, -1, name())
    bare = provider.launch(spec(f"aws://{REGION}/{ami}"))
    with pytest.raises(NotFound, match="has no disk 1"):
        provider.snapshot(bare.provider_id, 1, name())
    assert made_from(iid) == [] and made_from(bare.provider_id.split(";")[1]) == []


def test_a_missing_or_terminated_instance_is_not_found(provider: EC2Provider, ami: str) -> None:
    with pytest.raises(NotFound, match="i-1234567890abcdef0"):
        provider.snapshot(f"{REGION};i-1234567890abcdef0", 0, name())
    m = provider.launch(spec(f"aws://{REGION}/{ami}"))
    provider.destroy(m.provider_id)
    with pytest.raises(NotFound, match="not found"):
        provider.snapshot(m.provider_id, 0, name())
    assert made_from(m.provider_id.split(";")[1]) == []


# -- waiting for the image --------------------------------------------------------------------


def _image_state(monkeypatch: pytest.MonkeyPatch, state: str) -> None:
    """moto makes images `available` at once: here the cloud leaves new ones in `state`."""
    from moto.ec2.models.amis import AmiBackend

    create = AmiBackend.create_image

    def create_image(self: Any, *args: Any, **kwargs: Any) -> Any:
        made = create(self, *args, **kwargs)
        made.state = state
        return made

    monkeypatch.setattr(AmiBackend, "create_image", create_image)


def test_a_failed_image_is_an_error_naming_it_and_is_removed(
    provider: EC2Provider, ami: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = provider.launch(spec(f"aws://{REGION}/{ami}"))
    _image_state(monkeypatch, "failed")
    with pytest.raises(ProviderError, match=r"image (ami-[0-9a-f]+) \(.*\) of i-\S+ is failed"):
        provider.snapshot(m.provider_id, 0, name())
    assert made_from(m.provider_id.split(";")[1]) == []  # nothing broken is left behind


def test_an_image_still_pending_at_the_timeout_is_an_error_naming_it(
    aws: str, ami: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = EC2Provider(AUTH, options={**FAST, "launch_timeout": 0.3})
    provider.installation = "inst-snap"
    m = provider.launch(spec(f"aws://{REGION}/{ami}"))
    _image_state(monkeypatch, "pending")
    with pytest.raises(ProviderError) as caught:
        provider.snapshot(m.provider_id, 0, name())
    [left] = made_from(m.provider_id.split(";")[1])
    assert str(caught.value).endswith(f"still pending after 0.3 s; it is left as aws://{REGION}/"
                                      f"{left['ImageId']}")  # fmt: skip
    provider.delete_image(f"aws://{REGION}/{left['ImageId']}")


# -- the image's life -------------------------------------------------------------------------


def test_a_snapshot_image_survives_cleanup(provider: EC2Provider, ami: str) -> None:
    node = spec(f"aws://{REGION}/{ami}")
    m = provider.launch(node)
    url = provider.snapshot(m.provider_id, 0, name())
    provider.cleanup(node.infrastructure_id)
    assert instance(m.provider_id)["State"]["Name"] == "terminated"
    kept = image(parse_image(url, REGION)[1])
    assert kept is not None and kept["State"] == "available"  # the service decides (auto_delete)
    assert all(snapshot_exists(s) for s in snapshots_of(kept))


def test_delete_image_deregisters_it_and_deletes_its_snapshots(
    provider: EC2Provider, ami: str
) -> None:
    m = provider.launch(spec(f"aws://{REGION}/{ami}"))
    url = provider.snapshot(m.provider_id, 0, name())
    new = parse_image(url, REGION)[1]
    described = image(new)
    assert described is not None
    backing = snapshots_of(described)
    assert backing and all(snapshot_exists(s) for s in backing)
    other = provider.snapshot(m.provider_id, 0, name())  # another image of the same node

    provider.delete_image(url)

    assert image(new) is None
    assert not any(snapshot_exists(s) for s in backing)
    provider.delete_image(url)  # already gone: quiet
    provider.delete_image(f"aws://{REGION}/ami-12345678")  # never existed: quiet
    kept = image(parse_image(other, REGION)[1])
    assert kept is not None and all(snapshot_exists(s) for s in snapshots_of(kept))


def test_snapshots_left_by_a_half_done_delete_are_deleted(provider: EC2Provider, ami: str) -> None:
    m = provider.launch(spec(f"aws://{REGION}/{ami}"))
    url = provider.snapshot(m.provider_id, 0, name())
    new = parse_image(url, REGION)[1]
    described = image(new)
    assert described is not None
    backing = snapshots_of(described)
    raw().deregister_image(ImageId=new)  # as if a delete stopped right after this step
    assert all(snapshot_exists(s) for s in backing)
    provider.delete_image(url)
    assert not any(snapshot_exists(s) for s in backing)


@pytest.mark.parametrize(
    "url",
    [
        "ost://cloud.example.org/1234",
        f"aws://{REGION}/",
        f"aws://{REGION}/snap-0123456789abcdef0",
        "aws://mars-north-1/ami-12345678",
    ],
)
def test_a_bad_image_url_is_a_clear_error(provider: EC2Provider, url: str) -> None:
    with pytest.raises(ProviderError) as caught:
        provider.delete_image(url)
    assert type(caught.value) is ProviderError  # not NotFound: that would read as "already gone"
    why = "unknown region 'mars-north-1'" if "mars" in url else "not an aws://<region>/<ami-id> URL"
    assert str(caught.value) == f"ec2: cannot delete image {url!r}: {why}"


# -- errors -----------------------------------------------------------------------------------


def test_cloud_errors_are_typed(
    provider: EC2Provider, ami: str, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = provider.launch(spec(f"aws://{REGION}/{ami}"))
    with ec2_error_server("UnauthorizedOperation", upstream=aws, actions={"CreateImage"}) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        with pytest.raises(ProviderAuthError, match=r"\(UnauthorizedOperation\)"):
            EC2Provider(AUTH, options=FAST).snapshot(m.provider_id, 0, name())
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", aws)
    made = provider.snapshot(m.provider_id, 0, name())
    with ec2_error_server("Unavailable", upstream=aws, actions={"DeregisterImage"}) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        with pytest.raises(Transient, match=r"delete image ami-.*\(Unavailable\)"):
            EC2Provider(AUTH, options=FAST).delete_image(made)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", aws)
    assert image(parse_image(made, REGION)[1]) is not None  # still there: the retry deletes it
    provider.delete_image(made)
    assert image(parse_image(made, REGION)[1]) is None
    with ec2_error_server("AuthFailure") as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        with pytest.raises(ProviderAuthError, match=r"\(AuthFailure\)"):
            EC2Provider(AUTH, options=FAST).delete_image(made)


def test_image_and_snapshot_error_codes() -> None:
    assert error_class("SnapshotLimitExceeded") is QuotaExceeded
    assert error_class("PendingSnapshotLimitExceeded") is QuotaExceeded
    assert error_class("ResourceLimitExceeded") is QuotaExceeded
    assert error_class("InvalidSnapshot.InUse") is ProviderError  # exists, still used
    assert error_class("InvalidSnapshot.NotFound") is NotFound
    assert error_class("InvalidAMIName.Duplicate") is ProviderError
