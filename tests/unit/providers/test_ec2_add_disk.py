"""Data disks added to a running EC2 machine (IM's alterVM with a new disk.N): boto3 over real
HTTP against moto's EC2 server, as in test_ec2.py. moto keeps one state for the whole process:
every check looks only at the ids and tags these tests made."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from orbis.model.infrastructure import Compute, Volume
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    LABEL_NODE,
    NodeSpec,
    NotFound,
    ProviderError,
)
from orbis.providers.ec2 import LABEL_DISK, LABEL_VOLUME_OF, EC2Provider

from .ec2_common import GB, KEY, REGION, make_provider, raw


@pytest.fixture
def provider(aws: str) -> EC2Provider:
    return make_provider("inst-disk")


def spec(image: str, *, infra: str | None = None, **compute: Any) -> NodeSpec:
    node = Compute(name="front", type="tosca.nodes.Compute", image=image, **compute)
    return NodeSpec(
        infrastructure_id=infra or str(uuid.uuid4()),
        vm_id=0,
        name="front",
        ssh_public_key=KEY,
        compute=node,
    )


def boot(provider: EC2Provider, ami: str, **compute: Any) -> tuple[str, str, str]:
    """(infrastructure, provider id, instance id) of a new machine."""
    infra = str(uuid.uuid4())
    machine = provider.launch(spec(f"aws://{REGION}/{ami}", infra=infra, **compute))
    return infra, machine.provider_id, machine.provider_id.partition(";")[2]


def instance(iid: str) -> dict[str, Any]:
    return dict(raw().describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0])


def volume(vid: str) -> dict[str, Any] | None:
    found = raw().describe_volumes(Filters=[{"Name": "volume-id", "Values": [vid]}])["Volumes"]
    return dict(found[0]) if found else None


def tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def tagged_volumes(infra: str) -> list[dict[str, Any]]:
    mine = [{"Name": f"tag:{LABEL_INFRASTRUCTURE}", "Values": [infra]}]
    return list(raw().describe_volumes(Filters=mine)["Volumes"])


def mapping(iid: str, device: str) -> dict[str, Any]:
    return next(m for m in instance(iid)["BlockDeviceMappings"] if m["DeviceName"] == device)


def test_blank_disk_is_made_in_the_zone_tagged_attached_and_goes_with_the_machine(
    provider: EC2Provider, ami: str
) -> None:
    infra, pid, iid = boot(provider, ami)
    zone = instance(iid)["Placement"]["AvailabilityZone"]

    device = provider.add_disk(pid, Volume("disk.1", index=1, size=3 * GB + 1))

    assert device == "/dev/sdf"  # the first free of /dev/sd[f-p], as launch numbers them
    [made] = tagged_volumes(infra)
    assert made["AvailabilityZone"] == zone
    assert made["Size"] == 4 and made["VolumeType"] == "standard"
    assert made["State"] == "in-use"
    assert made["Attachments"][0]["InstanceId"] == iid
    assert made["Attachments"][0]["Device"] == "/dev/sdf"
    labels = tags(made)
    assert labels[LABEL_INSTALLATION] == "inst-disk"
    assert labels[LABEL_NODE] == "front.0"
    assert labels[LABEL_VOLUME_OF] == iid and labels[LABEL_DISK] == "1"
    assert mapping(iid, "/dev/sdf")["Ebs"]["VolumeId"] == made["VolumeId"]
    assert mapping(iid, "/dev/sdf")["Ebs"]["DeleteOnTermination"] is True

    provider.destroy(pid)
    assert volume(made["VolumeId"]) is None


def test_blank_disk_takes_the_asked_device_and_type(provider: EC2Provider, ami: str) -> None:
    infra, pid, iid = boot(provider, ami)

    device = provider.add_disk(
        pid, Volume("disk.2", index=2, size=GB, type="gp2", device="/dev/vdh")
    )

    assert device == "/dev/sdh"  # launch's rule: /dev/sd + the last letter
    [made] = tagged_volumes(infra)
    assert made["VolumeType"] == "gp2" and made["Attachments"][0]["Device"] == "/dev/sdh"
    provider.destroy(pid)


def test_existing_volume_is_attached_and_kept_after_destroy(
    provider: EC2Provider, ami: str
) -> None:
    _, pid, iid = boot(provider, ami)
    zone = instance(iid)["Placement"]["AvailabilityZone"]
    vid = raw().create_volume(AvailabilityZone=zone, Size=2)["VolumeId"]

    device = provider.add_disk(pid, Volume("disk.1", index=1, volume_id=f"aws://{REGION}/{vid}"))

    theirs = volume(vid)
    assert theirs is not None and theirs["State"] == "in-use"
    assert theirs["Attachments"][0]["InstanceId"] == iid
    assert theirs["Attachments"][0]["Device"] == device == "/dev/sdf"
    assert LABEL_INFRASTRUCTURE not in tags(theirs)  # never cleanup's to delete
    assert mapping(iid, device)["Ebs"]["DeleteOnTermination"] is False

    provider.destroy(pid)
    kept = volume(vid)
    assert kept is not None and kept["State"] == "available"


def test_a_disk_number_the_machine_has_is_refused(provider: EC2Provider, ami: str) -> None:
    infra, pid, _ = boot(provider, ami)
    provider.add_disk(pid, Volume("disk.1", index=1, size=GB))

    with pytest.raises(ProviderError, match="already has disk 1"):
        provider.add_disk(pid, Volume("disk.1", index=1, size=GB))

    assert len(tagged_volumes(infra)) == 1
    provider.destroy(pid)


def test_a_retry_reuses_the_volume_made_for_the_same_disk(provider: EC2Provider, ami: str) -> None:
    infra, pid, iid = boot(provider, ami)
    zone = instance(iid)["Placement"]["AvailabilityZone"]
    labels = {
        LABEL_INFRASTRUCTURE: infra,
        LABEL_INSTALLATION: "inst-disk",
        LABEL_NODE: "front.0",
        LABEL_VOLUME_OF: iid,
        LABEL_DISK: "3",
    }
    left = raw().create_volume(  # what a crash between create and attach leaves
        AvailabilityZone=zone,
        Size=1,
        TagSpecifications=[
            {"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in labels.items()]}
        ],
    )["VolumeId"]

    provider.add_disk(pid, Volume("disk.3", index=3, size=GB))

    [made] = tagged_volumes(infra)
    assert made["VolumeId"] == left and made["State"] == "in-use"
    provider.destroy(pid)


def test_missing_volume_is_not_found(provider: EC2Provider, ami: str) -> None:
    _, pid, _ = boot(provider, ami)

    with pytest.raises(NotFound):
        provider.add_disk(pid, Volume("disk.1", index=1, volume_id="vol-0123456789abcdef0"))

    provider.destroy(pid)


def test_cleanup_removes_an_orphaned_tagged_volume_only(provider: EC2Provider, ami: str) -> None:
    infra, _, iid = boot(provider, ami)
    zone = instance(iid)["Placement"]["AvailabilityZone"]
    mine = {LABEL_INFRASTRUCTURE: infra, LABEL_INSTALLATION: "inst-disk"}
    orphan = raw().create_volume(
        AvailabilityZone=zone,
        Size=1,
        TagSpecifications=[
            {"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in mine.items()]}
        ],
    )["VolumeId"]
    untagged = raw().create_volume(AvailabilityZone=zone, Size=1)["VolumeId"]

    provider.cleanup(infra)

    assert volume(orphan) is None
    assert volume(untagged) is not None
