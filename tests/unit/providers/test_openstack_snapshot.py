"""Disk snapshots on OpenStack: openstacksdk over real HTTP against the stand-in cloud (Nova's
createImage, Cinder's os-volume_upload_image, Glance's image statuses and deletes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orbis.model.infrastructure import Volume
from orbis.placement.fit import GB
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    NotFound,
    ProviderError,
    QuotaExceeded,
)
from orbis.providers.openstack import OpenStackProvider
from orbis.testing.standins.openstack import OpenStackStandin

from .test_openstack import UBUNTU, created, provider, spec


@pytest.fixture
def cloud() -> Iterator[OpenStackStandin]:
    with OpenStackStandin() as standin:
        yield standin


def image_id(url: str) -> str:
    assert url.startswith("ost://127.0.0.1/"), url
    return url.removeprefix("ost://127.0.0.1/")


def actions(cloud: OpenStackStandin, name: str) -> list[Any]:
    """The bodies of successful server/volume actions called `name`."""
    return [b[name] for b in created(cloud, "/action") if name in (b or {})]


# -- disk 0: Nova's createImage -----------------------------------------------------------------


def test_boot_disk_snapshot_is_an_active_image_labelled_as_ours(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    p.installation = "inst-1"
    machine = p.launch(spec())
    url = p.snapshot(machine.provider_id, 0, "front-saved")
    image = cloud.images[image_id(url)]
    assert (image["name"], image["status"]) == ("front-saved", "active")
    assert image["instance_uuid"] == machine.provider_id  # Nova's createImage made it
    assert (image[LABEL_INFRASTRUCTURE], image[LABEL_INSTALLATION]) == ("inf-1", "inst-1")
    (action,) = actions(cloud, "createImage")
    assert action["name"] == "front-saved"
    # waited through Glance's statuses: one GET to `saving`, one more to `active`
    gets = [p for m, p, _, s in cloud.requests if m == "GET" and p.endswith(image_id(url))]
    assert len(gets) >= 2
    assert url in [i.url for i in p.images()]  # the form images() lists


def test_a_new_node_boots_from_the_snapshot(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    first = p.launch(spec())
    url = p.snapshot(first.provider_id, 0, "golden")
    second = p.launch(spec(vm_id=1, image=url))
    bodies = created(cloud, "/compute/v2.1/servers")
    assert bodies[-1]["server"]["imageRef"] == image_id(url) != UBUNTU
    assert cloud.servers[second.provider_id]["image"]["id"] == image_id(url)


def test_createimage_answer_in_the_json_body_from_microversion_2_45() -> None:
    # from 2.45 Nova answers {"image_id": ...} and no Location header
    with OpenStackStandin(compute_microversion="2.45") as cloud:
        p = provider(cloud)
        machine = p.launch(spec())
        url = p.snapshot(machine.provider_id, 0, "new-style")
        assert cloud.images[image_id(url)]["status"] == "active"
        assert cloud.images[image_id(url)]["name"] == "new-style"


def test_snapshot_of_a_missing_server_is_not_found(cloud: OpenStackStandin) -> None:
    with pytest.raises(NotFound, match="no-such-server"):
        provider(cloud).snapshot("no-such-server", 0, "x")
    assert not actions(cloud, "createImage")


# -- disk N: Cinder's upload to Glance ----------------------------------------------------------


def test_data_volume_snapshot_uploads_that_volume(cloud: OpenStackStandin) -> None:
    existing = cloud.add_volume(size=5, name="kept")
    volumes = [Volume("disk.1", index=1, size=2 * GB),
               Volume("disk.2", index=2, volume_id=f"ost://127.0.0.1/{existing}")]  # fmt: skip
    p = provider(cloud)
    machine = p.launch(spec(volumes=volumes))
    blank = next(v for v in cloud.volumes.values() if v.get("orbis"))
    first = p.snapshot(machine.provider_id, 1, "disk-one")
    second = p.snapshot(machine.provider_id, 2, "disk-two")
    assert [a["image_name"] for a in actions(cloud, "os-volume_upload_image")] == [
        "disk-one", "disk-two"]  # fmt: skip
    uploads = [p for m, p, b, s in cloud.requests
               if m == "POST" and "os-volume_upload_image" in (b or {})]  # fmt: skip
    assert uploads[0].endswith(f"/volumes/{blank['id']}/action")
    assert uploads[1].endswith(f"/volumes/{existing}/action")
    for url, name in ((first, "disk-one"), (second, "disk-two")):
        image = cloud.images[image_id(url)]
        assert (image["name"], image["status"], image[LABEL_INFRASTRUCTURE]) == (
            name, "active", "inf-1")  # fmt: skip
    assert {cloud.volumes[existing]["status"], blank["status"]} == {"in-use"}  # upload done
    assert not actions(cloud, "createImage")


def test_ephemeral_disks_do_not_shift_the_disk_numbers(cloud: OpenStackStandin) -> None:
    volumes = [Volume("disk.1", index=1, size=GB, type="ephemeral"),
               Volume("disk.2", index=2, size=3 * GB)]  # fmt: skip
    p = provider(cloud)
    machine = p.launch(spec(volumes=volumes))
    (volume,) = cloud.volumes.values()
    p.snapshot(machine.provider_id, 2, "second")
    (upload,) = [p for m, p, b, s in cloud.requests
                 if m == "POST" and "os-volume_upload_image" in (b or {})]  # fmt: skip
    assert upload.endswith(f"/volumes/{volume['id']}/action")
    with pytest.raises(NotFound, match="has no disk 1"):  # local disk: no volume to upload
        p.snapshot(machine.provider_id, 1, "first")


@pytest.mark.parametrize("disk", [1, 3, -1])
def test_a_disk_the_server_does_not_have_is_not_found(cloud: OpenStackStandin, disk: int
                                                      ) -> None:  # fmt: skip
    p = provider(cloud)
    volumes = [Volume("disk.2", index=2, size=GB)] if disk != 1 else []
    machine = p.launch(spec(volumes=volumes))
    with pytest.raises(NotFound, match=f"server {machine.provider_id} has no disk {disk}"):
        p.snapshot(machine.provider_id, disk, "nothing")
    assert not actions(cloud, "os-volume_upload_image") and not actions(cloud, "createImage")


def test_boot_volume_is_not_counted_as_a_data_disk(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec(disk_size=20 * GB, volumes=[Volume("disk.1", index=1, size=GB)]))
    root, data = (v["id"] for v in cloud.volumes.values())
    assert cloud.volumes[root]["size"] == 20
    p.snapshot(machine.provider_id, 1, "data")
    (upload,) = [p for m, p, b, s in cloud.requests
                 if m == "POST" and "os-volume_upload_image" in (b or {})]  # fmt: skip
    assert upload.endswith(f"/volumes/{data}/action")


# -- the image's life ---------------------------------------------------------------------------


def test_snapshot_survives_cleanup(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec(public=True, volumes=[Volume("disk.1", index=1, size=GB)]))
    boot = p.snapshot(machine.provider_id, 0, "boot")
    data = p.snapshot(machine.provider_id, 1, "data")
    p.cleanup("inf-1")
    assert not any(cloud.owned().values()), cloud.owned()  # the infrastructure is gone...
    for url in (boot, data):  # ...its saved disks are not: the service decides (auto_delete)
        assert cloud.images[image_id(url)]["status"] == "active"
    assert not [p for m, p, _, _ in cloud.requests if m == "DELETE" and "/image/" in p]


def test_delete_image_removes_it_and_a_second_delete_is_quiet(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec())
    url = p.snapshot(machine.provider_id, 0, "to-go")
    p.delete_image(url)
    assert image_id(url) not in cloud.images
    deletes = [s for m, path, _, s in cloud.requests if m == "DELETE" and "/image/" in path]
    assert deletes == [204]
    p.delete_image(url)  # already gone: fine
    assert url not in [i.url for i in p.images()]
    with pytest.raises(NotFound):  # and nothing boots from it any more
        p.launch(spec(vm_id=1, image=url))


def test_delete_image_refuses_other_sites_and_images_orbis_did_not_make(
    cloud: OpenStackStandin,
) -> None:
    p = provider(cloud)
    with pytest.raises(ProviderError, match="another site") as caught:
        p.delete_image(f"ost://elsewhere.example.org/{UBUNTU}")
    assert not isinstance(caught.value, NotFound)
    with pytest.raises(ProviderError, match="not an OpenStack image"):
        p.delete_image("aws://us-east-1/ami-123")
    with pytest.raises(ProviderError, match="not saved by Orbis"):
        p.delete_image(f"ost://127.0.0.1/{UBUNTU}")  # the site's own image
    assert UBUNTU in cloud.images
    # another installation's snapshot is not ours to delete either
    mine, theirs = provider(cloud), provider(cloud)
    mine.installation, theirs.installation = "A", "B"
    url = theirs.snapshot(theirs.launch(spec()).provider_id, 0, "theirs")
    with pytest.raises(ProviderError, match="not saved by Orbis"):
        mine.delete_image(url)
    theirs.delete_image(url)
    assert image_id(url) not in cloud.images


# -- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("disk", [0, 1])
def test_a_killed_image_is_a_provider_error_naming_it(disk: int) -> None:
    with OpenStackStandin(image_fault="killed") as cloud:
        p = provider(cloud)
        machine = p.launch(spec(volumes=[Volume("disk.1", index=1, size=GB)]))
        with pytest.raises(ProviderError, match=r"image broken \(.*\) is killed") as caught:
            p.snapshot(machine.provider_id, disk, "broken")
        assert type(caught.value) is ProviderError
        made = [i for i in created(cloud, "/action") if i]  # the snapshot was asked for
        assert any("createImage" in b or "os-volume_upload_image" in b for b in made)
        # the useless image is removed (no one knows its URL) and the volume is usable again
        assert not [i for i in cloud.images.values() if i["name"] == "broken"]
        assert all(v["status"] == "in-use" for v in cloud.volumes.values())


def test_an_image_that_never_finishes_is_an_error_naming_it() -> None:
    with OpenStackStandin(image_polls=10_000) as cloud:
        options = cloud.fast_options | {"snapshot_timeout": 0.2}
        p = OpenStackProvider(cloud.auth_line(), options=options)
        machine = p.launch(spec())
        with pytest.raises(ProviderError, match=r"image slow \(.*\) still queued after 0.2 s"):
            p.snapshot(machine.provider_id, 0, "slow")


@pytest.mark.parametrize("disk", [0, 1])
def test_image_quota_is_quota_exceeded(disk: int) -> None:
    with OpenStackStandin(quota={"images": 0}) as cloud:
        p = provider(cloud)
        machine = p.launch(spec(volumes=[Volume("disk.1", index=1, size=GB)]))
        with pytest.raises(QuotaExceeded, match="[Qq]uota exceeded"):
            p.snapshot(machine.provider_id, disk, "over")
        assert [i["id"] for i in cloud.images.values() if i.get("owner")] == []
        status = 403 if disk == 0 else 413  # Nova's and Cinder's words for Glance's refusal
        assert [s for m, path, _, s in cloud.requests if path.endswith("/action")][-1] == status


def test_snapshot_of_a_server_still_building_is_refused_untyped() -> None:
    with OpenStackStandin(build_polls=1000) as cloud:
        p = OpenStackProvider(cloud.auth_line(), options={"poll_interval": 0.01, "timeout": 0.1})
        with pytest.raises(ProviderError):
            p.launch(spec())
        (server,) = cloud.servers
        with pytest.raises(ProviderError, match="vm_state building") as caught:
            p.snapshot(server, 0, "early")
        assert type(caught.value) is ProviderError
