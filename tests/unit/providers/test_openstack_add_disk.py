"""Disks added to a running OpenStack server (IM's alterVM with a new disk.N): openstacksdk over
real HTTP against the stand-in cloud (Cinder's volume create/delete and statuses, Nova's
os-volume_attachments and server metadata)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import openstack.exceptions as os_exc
import pytest

from orbis.model.infrastructure import Volume
from orbis.placement.fit import GB
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    LABEL_NODE,
    NotFound,
    ProviderError,
    QuotaExceeded,
)
from orbis.providers.openstack import DISK_LABEL, DISKS_LABEL, SERVER_LABEL, OpenStackProvider
from orbis.testing.standins.openstack import OpenStackStandin

from .test_openstack import created, provider, spec


@pytest.fixture
def cloud() -> Iterator[OpenStackStandin]:
    with OpenStackStandin() as standin:
        yield standin


def requests(cloud: OpenStackStandin, method: str, part: str) -> list[tuple[str, int]]:
    """(path, status) of the requests with this method whose path contains `part`."""
    return [(p, s) for m, p, _, s in cloud.requests if m == method and part in p]


def made(cloud: OpenStackStandin) -> list[dict[str, Any]]:
    """The volumes that carry Orbis metadata (add_disk's)."""
    return [v for v in cloud.volumes.values() if v.get("metadata", {}).get(LABEL_INFRASTRUCTURE)]


def disks(cloud: OpenStackStandin, server_id: str) -> str | None:
    return cloud.servers[server_id]["metadata"].get(DISKS_LABEL)


def uploaded(cloud: OpenStackStandin) -> list[str]:
    """Volume ids Cinder was asked to upload to Glance (snapshot of a data disk), in order."""
    return [p.split("/volumes/")[1].split("/")[0] for p, _ in requests(cloud, "POST", "/action")
            if "/volumes/" in p]  # fmt: skip


def orphan(cloud: OpenStackStandin, **labels: str) -> str:
    """A volume left with Orbis labels and never attached, as a crash between create and
    attach leaves it."""
    volume_id = cloud.add_volume(size=1, name=f"orphan-{len(cloud.volumes)}")
    cloud.volumes[volume_id]["metadata"] = dict(labels)
    return volume_id


# -- a blank disk -------------------------------------------------------------------------------


def test_a_blank_disk_is_created_attached_labelled_and_its_device_reported(
    cloud: OpenStackStandin,
) -> None:
    p = provider(cloud)
    p.installation = "inst-1"
    machine = p.launch(spec())
    device = p.add_disk(machine.provider_id, Volume("disk.1", index=1, size=3 * GB + 1,
                                                    type="ssd"))  # fmt: skip
    assert device == "/dev/vdb"  # vda is the boot disk
    (volume,) = cloud.volumes.values()
    assert volume["name"] == "orbis-inf-1-front-0-disk1"
    assert (volume["size"], volume["volume_type"]) == (4, "ssd")  # whole GiB, rounded up
    assert volume["metadata"] == {LABEL_INFRASTRUCTURE: "inf-1", LABEL_INSTALLATION: "inst-1",
                                  LABEL_NODE: "front.0", SERVER_LABEL: machine.provider_id,
                                  DISK_LABEL: "1"}  # fmt: skip
    # waited for: Nova refuses a volume still `creating`, and `attaching` became `in-use`
    assert volume["status"] == "in-use" and volume["_server"] == machine.provider_id
    assert volume["_device"] == device
    (attach,) = created(cloud, "/os-volume_attachments")
    assert attach == {"volumeAttachment": {"volumeId": volume["id"]}}
    assert disks(cloud, machine.provider_id) == "1"
    assert cloud.owned()["volumes"] == [volume["id"]]
    # the SDK sees it attached to the server
    attached = list(p.conn.compute.volume_attachments(machine.provider_id))
    assert [(a.volume_id, a.device) for a in attached] == [(volume["id"], "/dev/vdb")]


def test_the_device_asked_for_is_passed_to_nova(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec())
    device = p.add_disk(machine.provider_id, Volume("disk.1", index=1, size=GB, device="hdd"))
    assert device == "/dev/vdd"
    (attach,) = created(cloud, "/os-volume_attachments")
    assert attach["volumeAttachment"]["device"] == "/dev/vdd"
    assert cloud.volumes[attach["volumeAttachment"]["volumeId"]]["volume_type"] == "__DEFAULT__"


def test_slow_volumes_are_waited_for() -> None:
    with OpenStackStandin(volume_polls=3) as cloud:
        p = provider(cloud)
        machine = p.launch(spec())
        assert p.add_disk(machine.provider_id, Volume("disk.1", index=1, size=GB)) == "/dev/vdb"
        (volume,) = cloud.volumes.values()
        assert volume["status"] == "in-use"
        gets = requests(cloud, "GET", f"/volumes/{volume['id']}")
        assert len(gets) >= 6  # three GETs while creating, three while attaching


# -- DISKS_LABEL and snapshots ------------------------------------------------------------------


def test_disks_label_is_updated_and_snapshot_finds_the_added_volume(
    cloud: OpenStackStandin,
) -> None:
    volumes = [Volume("disk.1", index=1, size=GB),
               Volume("disk.3", index=3, size=GB, type="ephemeral")]  # fmt: skip
    p = provider(cloud)
    machine = p.launch(spec(volumes=volumes))
    assert disks(cloud, machine.provider_id) == "1"
    (boot_time,) = cloud.volumes
    assert p.add_disk(machine.provider_id, Volume("disk.2", index=2, size=2 * GB)) == "/dev/vdd"
    (added,) = (v["id"] for v in made(cloud))
    assert disks(cloud, machine.provider_id) == "1,2"  # appended: Nova lists it last
    p.snapshot(machine.provider_id, 2, "two")
    p.snapshot(machine.provider_id, 1, "one")
    assert uploaded(cloud) == [added, boot_time]
    with pytest.raises(NotFound, match="has no disk 3"):  # still the local, ephemeral one
        p.snapshot(machine.provider_id, 3, "three")


def test_a_server_launched_without_volumes_gets_the_label(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec())
    assert disks(cloud, machine.provider_id) is None
    p.add_disk(machine.provider_id, Volume("disk.2", index=2, size=GB))
    assert disks(cloud, machine.provider_id) == "2"
    (added,) = (v["id"] for v in made(cloud))
    p.snapshot(machine.provider_id, 2, "two")
    assert uploaded(cloud) == [added]
    with pytest.raises(NotFound, match="has no disk 1"):
        p.snapshot(machine.provider_id, 1, "one")


# -- existing volumes, destroy and cleanup ------------------------------------------------------


def test_an_existing_volume_is_attached_and_survives_destroy(cloud: OpenStackStandin) -> None:
    existing = cloud.add_volume(size=5, name="kept")
    p = provider(cloud)
    machine = p.launch(spec())
    blank = p.add_disk(machine.provider_id, Volume("disk.1", index=1, size=GB))
    kept = p.add_disk(
        machine.provider_id, Volume("disk.2", index=2, volume_id=f"ost://127.0.0.1/{existing}")
    )
    assert (blank, kept) == ("/dev/vdb", "/dev/vdc")
    assert cloud.volumes[existing]["status"] == "in-use"
    assert cloud.volumes[existing]["metadata"] == {}  # not ours: not labelled
    assert disks(cloud, machine.provider_id) == "1,2"
    (ours,) = (v["id"] for v in made(cloud))
    p.destroy(machine.provider_id)
    assert machine.provider_id not in cloud.servers
    assert list(cloud.volumes) == [existing]  # ours went with the server, the user's stayed
    assert requests(cloud, "DELETE", "/volumes/") == [(f"/volume/v3/{cloud.project['id']}"
                                                       f"/volumes/{ours}", 202)]  # fmt: skip
    # the server first, then (once Nova had detached it) the volume
    order = [p for m, p, _, _ in cloud.requests if m == "DELETE"]
    assert order.index(f"/compute/v2.1/servers/{machine.provider_id}") < \
        order.index(f"/volume/v3/{cloud.project['id']}/volumes/{ours}")  # fmt: skip
    assert p.conn.block_storage.get_volume(existing).status == "available"  # detached


def test_destroy_after_the_server_went_still_deletes_its_volumes(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec())
    p.add_disk(machine.provider_id, Volume("disk.1", index=1, size=GB))
    p.conn.compute.delete_server(machine.provider_id)  # gone before destroy (or its retry)
    p.destroy(machine.provider_id)
    assert not cloud.volumes


def test_an_existing_volume_must_exist_and_be_available(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec())
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound, match=f"volume {missing} not found"):
        p.add_disk(machine.provider_id, Volume("disk.1", index=1, volume_id=missing))
    busy = cloud.add_volume(name="busy")
    other = p.launch(spec(vm_id=1))
    p.add_disk(other.provider_id, Volume("disk.1", index=1, volume_id=busy))
    with pytest.raises(ProviderError, match=rf"volume busy \({busy}\) is in-use, not available"):
        p.add_disk(machine.provider_id, Volume("disk.1", index=1, volume_id=busy))
    assert disks(cloud, machine.provider_id) is None
    assert len(created(cloud, "/os-volume_attachments")) == 1  # the other server's only


def test_cleanup_deletes_orphaned_labelled_volumes_only(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    p.installation = "A"
    machine = p.launch(spec())
    p.add_disk(machine.provider_id, Volume("disk.1", index=1, size=GB))
    mine = orphan(cloud, **{LABEL_INFRASTRUCTURE: "inf-1", LABEL_INSTALLATION: "A"})
    elsewhere = orphan(cloud, **{LABEL_INFRASTRUCTURE: "inf-2", LABEL_INSTALLATION: "A"})
    theirs = orphan(cloud, **{LABEL_INFRASTRUCTURE: "inf-1", LABEL_INSTALLATION: "B"})
    users = cloud.add_volume(name="user's own")
    assert "inf-2" in p.owned_infrastructures()  # an orphan volume is enough to be found
    p.cleanup("inf-1")
    assert not cloud.servers
    assert sorted(cloud.volumes) == sorted([elsewhere, theirs, users])
    assert mine not in cloud.volumes
    p.cleanup("inf-2")
    assert sorted(cloud.volumes) == sorted([theirs, users])


def test_the_standin_refuses_to_delete_an_attached_volume(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec())
    p.add_disk(machine.provider_id, Volume("disk.1", index=1, size=GB))
    (volume,) = cloud.volumes
    with pytest.raises(os_exc.BadRequestException, match="must not be migrating, attached"):
        p.conn.block_storage.delete_volume(volume)
    p.conn.compute.delete_volume_attachment(machine.provider_id, volume)  # detach
    assert p.conn.block_storage.get_volume(volume).status == "available"
    p.conn.block_storage.delete_volume(volume)
    assert not cloud.volumes


# -- refusals and failures ----------------------------------------------------------------------


@pytest.mark.parametrize(("quota", "size"), [({"volumes": 0}, GB), ({"gigabytes": 2}, 3 * GB)])
def test_over_quota_is_quota_exceeded(quota: dict[str, int], size: int) -> None:
    with OpenStackStandin(quota=quota) as cloud:
        p = provider(cloud)
        machine = p.launch(spec())
        with pytest.raises(QuotaExceeded, match="quota"):
            p.add_disk(machine.provider_id, Volume("disk.1", index=1, size=size))
        assert requests(cloud, "POST", "/volumes") == [
            (f"/volume/v3/{cloud.project['id']}/volumes", 413)]  # fmt: skip
        assert not cloud.volumes and disks(cloud, machine.provider_id) is None
        assert not created(cloud, "/os-volume_attachments")


def test_an_error_status_is_a_provider_error_and_the_volume_is_removed() -> None:
    with OpenStackStandin(volume_fault="error") as cloud:
        p = provider(cloud)
        machine = p.launch(spec())
        with pytest.raises(ProviderError, match=r"volume orbis-inf-1-front-0-disk1 \(.*\) went "
                                                r"to error") as caught:  # fmt: skip
            p.add_disk(machine.provider_id, Volume("disk.1", index=1, size=GB))
        assert type(caught.value) is ProviderError
        assert requests(cloud, "POST", "/volumes")[0][1] == 202  # it was made...
        assert not cloud.volumes  # ...and removed
        assert not created(cloud, "/os-volume_attachments")
        assert disks(cloud, machine.provider_id) is None


def test_a_volume_that_will_not_attach_is_removed() -> None:
    with OpenStackStandin(build_polls=1000) as cloud:
        p = OpenStackProvider(cloud.auth_line(), options={"poll_interval": 0.01, "timeout": 0.1})
        with pytest.raises(ProviderError):
            p.launch(spec())
        (server,) = cloud.servers  # still building: Nova refuses to attach
        with pytest.raises(ProviderError, match="vm_state building"):
            p.add_disk(server, Volume("disk.1", index=1, size=GB))
        assert requests(cloud, "POST", "/volumes")[0][1] == 202
        assert not cloud.volumes


def test_an_ephemeral_disk_is_refused(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec())
    with pytest.raises(ProviderError, match="ephemeral disk can only be made when the server "
                                            "boots"):  # fmt: skip
        p.add_disk(machine.provider_id, Volume("disk.1", index=1, size=GB, type="Ephemeral"))
    assert not requests(cloud, "POST", "/volumes") and not cloud.volumes


def test_a_disk_number_the_server_has_is_refused(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec(volumes=[Volume("disk.1", index=1, size=GB)]))
    with pytest.raises(ProviderError, match=f"server {machine.provider_id} already has disk 1"):
        p.add_disk(machine.provider_id, Volume("disk.1", index=1, size=GB))
    p.add_disk(machine.provider_id, Volume("disk.2", index=2, size=GB))
    with pytest.raises(ProviderError, match=f"server {machine.provider_id} already has disk 2"):
        p.add_disk(machine.provider_id, Volume("disk.2", index=2, size=GB))
    assert len(requests(cloud, "POST", "/volumes")) == 1 and len(cloud.volumes) == 2
    assert disks(cloud, machine.provider_id) == "1,2"


def test_a_missing_server_is_not_found(cloud: OpenStackStandin) -> None:
    with pytest.raises(NotFound, match="server gone not found"):
        provider(cloud).add_disk("gone", Volume("disk.1", index=1, size=GB))
    assert not requests(cloud, "POST", "/volumes")


def test_a_retry_reuses_the_volume_made_for_that_disk(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec())
    left = orphan(cloud, **{LABEL_INFRASTRUCTURE: "inf-1", LABEL_NODE: "front.0",
                            SERVER_LABEL: machine.provider_id, DISK_LABEL: "1"})  # fmt: skip
    assert p.add_disk(machine.provider_id, Volume("disk.1", index=1, size=GB)) == "/dev/vdb"
    assert not requests(cloud, "POST", "/volumes")
    assert list(cloud.volumes) == [left] and cloud.volumes[left]["status"] == "in-use"
    assert disks(cloud, machine.provider_id) == "1"


def test_a_server_of_another_installation_is_refused(cloud: OpenStackStandin) -> None:
    mine, theirs = provider(cloud), provider(cloud)
    mine.installation, theirs.installation = "A", "B"
    machine = theirs.launch(spec())
    with pytest.raises(ProviderError, match="was not made by this Orbis"):
        mine.add_disk(machine.provider_id, Volume("disk.1", index=1, size=GB))
    assert not requests(cloud, "POST", "/volumes")
    theirs.add_disk(machine.provider_id, Volume("disk.1", index=1, size=GB))
    assert made(cloud)[0]["metadata"][LABEL_INSTALLATION] == "B"
