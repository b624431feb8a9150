"""AMIs: `aws://<region>/<ami>` URLs, finding a distribution's image, saving a boot disk
(`snapshot`, IM's create_image with NoReboot) and deleting such an image with its EBS snapshots.
"""

from __future__ import annotations

import re
import time
from contextlib import suppress
from typing import Any

import botocore.exceptions

from orbis.model.infrastructure import Compute
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    Image,
    NotFound,
    ProviderError,
)
from orbis.providers.ec2.errors import _BOTO_ERRORS, _code, _errors
from orbis.providers.ec2.session import EC2Session, _tags

# AMI states that will never become `available`
_IMAGE_FAILED = {"failed", "invalid", "deregistered", "error", "disabled"}


_IMAGE_GONE = {"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"}


_AMI_ID = re.compile(r"ami-[0-9a-f]+")


# who publishes each distribution's official images (AWS account ids)
OS_PUBLISHERS = {"ubuntu": "099720109477", "debian": "136693071363", "centos": "125523088429",
                 "rocky": "792107900819", "almalinux": "764336703387",
                 "fedora": "125523088429"}  # fmt: skip


def parse_image(url: str, default_region: str) -> tuple[str, str]:
    """(region, ami) of `aws://<region>/<ami>`; the region falls back to the line's."""
    scheme, _, rest = url.partition("://")
    if scheme != "aws" or not rest:
        raise NotFound(f"ec2: image {url!r} is not an aws://<region>/<ami> URL")
    region, _, ami = rest.rpartition("/")
    return region or default_region, ami


class Images(EC2Session):
    """The account's images; images found by OS; disk 0 saved as an AMI and deleted."""

    def images(self) -> list[Image]:
        with _errors("list images"):
            found = self.client().describe_images(Owners=["self"])["Images"]
        return [
            Image(
                id=i["ImageId"],
                name=i.get("Name") or i["ImageId"],
                url=f"aws://{self.region}/{i['ImageId']}",
                os_distro=i.get("Platform") or None,
            )
            for i in found
        ]

    def image_for_os(self, compute: Compute) -> str:
        """The newest public image of the node's distribution (and version) from the
        distribution's own publisher, as the template asked for an OS rather than an AMI."""
        distro = (compute.os_distribution or "").lower()
        pattern = f"*{distro}*{compute.os_version or ''}*".replace("**", "*")
        arch = compute.cpu_arch or "x86_64"
        with _errors(f"finding a {distro} image"):  # connection errors too, not only answers
            found = self.client(self.region).describe_images(
                Owners=[OS_PUBLISHERS.get(distro, "amazon")],
                Filters=[{"Name": "name", "Values": [pattern]},
                         {"Name": "architecture", "Values": [arch]},
                         {"Name": "state", "Values": ["available"]}],
            )["Images"]  # fmt: skip
        if not found:
            raise NotFound(f"ec2: no {distro} {compute.os_version or ''} image for {arch} in "
                           f"{self.region}; name one as aws://<region>/<ami>")  # fmt: skip
        return str(max(found, key=lambda i: i.get("CreationDate", ""))["ImageId"])

    def snapshot(self, provider_id: str, disk: int, name: str) -> str:
        """Save the boot disk (0) as an AMI while the node keeps running (NoReboot, as IM
        does). The instance's data volumes are left out of the image: only disk 0 was asked
        for. A data volume cannot become an image on EC2 (an AMI is a whole machine)."""
        region, instance_id = self._instance_id(provider_id)
        ec2 = self.client(region)
        what = f"snapshot of disk {disk} of {instance_id}"
        with _errors(what):
            instance = self._describe(ec2, instance_id)
            if instance is None or instance["State"]["Name"] in ("shutting-down", "terminated"):
                raise NotFound(f"ec2: {what}: instance {instance_id} not found")
            root = instance.get("RootDeviceName")
            data = sorted(
                str(m["DeviceName"])
                for m in instance.get("BlockDeviceMappings") or []
                if m.get("DeviceName") and m["DeviceName"] != root
            )
            if not 0 <= disk <= len(data):
                raise NotFound(f"ec2: instance {instance_id} has no disk {disk}")
            if disk > 0:
                raise ProviderError(
                    f"ec2: only the boot disk (0) can be saved as an image; "
                    f"disk {disk} is a data volume"
                )
            params: dict[str, Any] = {
                "InstanceId": instance_id,
                "Name": name,
                "Description": f"Boot disk of {instance_id}, saved by Orbis",
                "NoReboot": True,
            }
            if data:
                params["BlockDeviceMappings"] = [{"DeviceName": d, "NoDevice": ""} for d in data]
            infra = _tags(instance).get(LABEL_INFRASTRUCTURE)
            labels = {LABEL_INFRASTRUCTURE: infra} if infra else {}
            if self.installation:
                labels[LABEL_INSTALLATION] = self.installation
            if labels:
                params["TagSpecifications"] = [
                    *self._tag_spec("image", labels),
                    *self._tag_spec("snapshot", labels),
                ]
            ami = str(ec2.create_image(**params)["ImageId"])
            self._until_available(ec2, region, ami, f"image {ami} ({name}) of {instance_id}")
        return f"aws://{region}/{ami}"

    def _until_available(self, ec2: Any, region: str, ami: str, what: str) -> None:
        """Poll until the new image is `available`. A failed image is removed (nothing usable
        is lost); one still pending at the timeout is left, named in the error."""
        deadline = time.monotonic() + self.launch_timeout
        while True:
            # None: a new id may be unknown for a while yet (EC2 is eventually consistent)
            image = self._image(ec2, ami)
            state = str(image.get("State")) if image else "pending"
            if state == "available":
                return
            if image is not None and state in _IMAGE_FAILED:
                reason = (image.get("StateReason") or {}).get("Message") or "no reason given"
                removed = ""
                with suppress(ProviderError, *_BOTO_ERRORS):
                    self._delete_image(ec2, ami)
                    removed = "; it is removed"
                raise ProviderError(f"ec2: {what} is {state}: {reason}{removed}")
            if time.monotonic() >= deadline:
                raise ProviderError(
                    f"ec2: {what} still {state} after {self.launch_timeout:g} s; it is left "
                    f"as aws://{region}/{ami}"
                )
            time.sleep(self.poll_interval)

    def delete_image(self, url: str) -> None:
        """Deregister an image `snapshot` made, then delete the EBS snapshots behind it (EC2
        keeps, and bills, them otherwise). An image already gone is not an error; its snapshots
        left by a deletion that stopped half-way are still deleted."""
        bad = f"ec2: cannot delete image {url!r}"
        try:
            region, ami = parse_image(url, self.region)
        except NotFound:  # a bad URL, not an image already gone
            region, ami = "", ""
        if not _AMI_ID.fullmatch(ami):
            raise ProviderError(f"{bad}: not an aws://<region>/<ami-id> URL")
        try:
            ec2 = self.client(region)
        except NotFound as err:
            raise ProviderError(f"{bad}: {str(err).removeprefix('ec2: ')}") from None
        with _errors(f"delete image {ami}"):
            self._delete_image(ec2, ami)

    def _delete_image(self, ec2: Any, ami: str) -> None:
        image = self._image(ec2, ami)
        if image is None:
            snapshots = self._left_snapshots(ec2, ami)
        else:
            snapshots = [
                str(m["Ebs"]["SnapshotId"])
                for m in image.get("BlockDeviceMappings") or []
                if (m.get("Ebs") or {}).get("SnapshotId")
            ]
            if image.get("State") != "deregistered":
                try:
                    ec2.deregister_image(ImageId=ami)
                except botocore.exceptions.ClientError as err:
                    if _code(err) not in _IMAGE_GONE:
                        raise
        for snapshot in snapshots:
            self._delete_snapshot(ec2, snapshot, ami)

    @staticmethod
    def _image(ec2: Any, ami: str) -> dict[str, Any] | None:
        """The image as EC2 describes it; None once it is gone."""
        try:
            found = ec2.describe_images(ImageIds=[ami])["Images"]
        except botocore.exceptions.ClientError as err:
            if _code(err) in _IMAGE_GONE:
                return None
            raise
        return dict(found[0]) if found else None

    def _left_snapshots(self, ec2: Any, ami: str) -> list[str]:
        """Snapshots this installation tagged for an image that is gone (EC2 describes each
        as "Created by CreateImage(<instance>) for <ami>")."""
        filters = [*self._filters(), {"Name": "description", "Values": [f"* for {ami}*"]}]
        found = ec2.describe_snapshots(OwnerIds=["self"], Filters=filters)["Snapshots"]
        return [str(s["SnapshotId"]) for s in found]

    def _delete_snapshot(self, ec2: Any, snapshot: str, ami: str) -> None:
        """Delete one snapshot; one still in use (the deregistration settling) is tried again
        until `cleanup_timeout`."""

        def attempt() -> bool | None:
            try:
                ec2.delete_snapshot(SnapshotId=snapshot)
            except botocore.exceptions.ClientError as err:
                if _code(err) == "InvalidSnapshot.InUse":
                    return None
                if _code(err) != "InvalidSnapshot.NotFound":
                    raise
            return True

        self._wait(f"delete snapshot {snapshot} of image {ami}", attempt, self.cleanup_timeout)
