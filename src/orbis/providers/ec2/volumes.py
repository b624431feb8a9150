"""EBS volumes: the boot-time block device mapping (root size and type, blank and
snapshot data disks), existing `vol-…` volumes attached once the instance runs, and
`add_disk` (IM's alterVM with a new disk.N) on a running instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from typing import Any

import botocore.exceptions

from orbis.model.infrastructure import Compute, Volume
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    LABEL_NODE,
    NodeSpec,
    NotFound,
    ProviderError,
    QuotaExceeded,
)
from orbis.providers.ec2.errors import _BOTO_ERRORS, _code, _errors
from orbis.providers.ec2.session import _ALIVE, EC2Session, _slug, _tags

LABEL_VOLUME_OF = "orbis.instance"  # on volumes add_disk attached: the instance


LABEL_DISK = "orbis.disk"  # on volumes add_disk attached: the disk number


class Volumes(EC2Session):
    """Data disks at launch and added to a running instance."""

    def _block_devices(self, ec2: Any, ami: str, compute: Compute) -> list[dict[str, Any]]:
        """The root disk (size and type) and blank or snapshot data disks, at boot."""
        image = ec2.describe_images(ImageIds=[ami])["Images"]
        if not image:
            raise NotFound(f"ec2: image {ami} not found")
        mappings = []
        root = next(
            (
                m
                for m in image[0].get("BlockDeviceMappings") or []
                if m.get("Ebs", {}).get("SnapshotId")
            ),
            None,
        )
        if root is not None:
            ebs: dict[str, Any] = {
                "SnapshotId": root["Ebs"]["SnapshotId"],
                "DeleteOnTermination": True,
                "VolumeType": str(compute.features.get("disk.0.type") or "standard"),
            }
            if compute.disk_size:
                ebs["VolumeSize"] = max(1, -(-compute.disk_size // 1024**3))
            mappings.append({"DeviceName": root["DeviceName"], "Ebs": ebs})
        letters = iter("fghijklmnop")
        for volume in sorted(compute.volumes, key=lambda v: v.index):
            if volume.volume_id and not volume.volume_id.split("/")[-1].startswith("snap-"):
                continue  # an existing volume cannot go in a launch mapping (attached later)
            # IM's device rule: /dev/sd + the last letter of the given device
            device = f"/dev/sd{volume.device[-1] if volume.device else next(letters)}"
            vol: dict[str, Any] = {
                "DeleteOnTermination": True,
                "VolumeType": volume.type or "standard",
            }
            if volume.size:
                vol["VolumeSize"] = max(1, -(-volume.size // 1024**3))
            if volume.volume_id:
                vol["SnapshotId"] = volume.volume_id.split("/")[-1]
            mappings.append({"DeviceName": device, "Ebs": vol})
        return mappings

    def _attach_volumes(self, ec2: Any, instance: dict[str, Any], spec: NodeSpec) -> None:
        """Existing volumes (`vol-…`) named by the node: attached once it runs (IM resolves
        them but never attaches them)."""
        if spec.compute is None:
            return
        attached = {
            m.get("Ebs", {}).get("VolumeId") for m in instance.get("BlockDeviceMappings") or []
        }
        used = {m["DeviceName"][-1] for m in instance.get("BlockDeviceMappings") or []}
        letters = (c for c in "pomnlkjihgf" if c not in used)
        for volume in spec.compute.volumes:
            vol_id = (volume.volume_id or "").split("/")[-1]
            if vol_id.startswith("vol-") and vol_id not in attached:
                device = f"/dev/sd{volume.device[-1] if volume.device else next(letters)}"
                ec2.attach_volume(VolumeId=vol_id, InstanceId=instance["InstanceId"], Device=device)

    def add_disk(self, provider_id: str, volume: Volume) -> str:
        """A blank EBS volume made in the instance's zone (size rounded up to GiB, `volume.type`
        or `standard` as at launch, tagged like the instance plus LABEL_VOLUME_OF and
        LABEL_DISK) and waited for until `available`, or the existing volume `volume_id`
        (`vol-…` or aws://<region>/vol-…), which must be `available`. Either is attached at
        the device launch would give it (/dev/sd + the last letter of `volume.device`, else the
        first free of /dev/sd[f-p]) and waited for until `in-use`. A volume made here is then
        set to DeleteOnTermination, so it goes with the instance; an existing one is left to
        the user (only detached). Returns the device. A retry after a crash reuses the volume
        made for the same instance and disk."""
        region, instance_id = self._instance_id(provider_id)
        ec2 = self.client(region)
        what = f"add disk {volume.index} to {instance_id}"
        blank = not volume.volume_id
        if blank and not volume.size:
            raise ProviderError(f"ec2: {what}: the disk has neither a size nor a volume")
        with self._infra_lock(f"disks/{region}/{instance_id}"), _errors(what):
            instance = self._describe(ec2, instance_id)
            if instance is None or instance["State"]["Name"] not in _ALIVE:
                raise NotFound(f"ec2: {what}: instance {instance_id} not found")
            labels = _tags(instance)
            if LABEL_INFRASTRUCTURE not in labels or (
                self.installation and labels.get(LABEL_INSTALLATION) != self.installation
            ):  # a volume made for it would be no one's
                raise ProviderError(f"ec2: {what}: instance {instance_id} was not made by "
                                    "this Orbis")  # fmt: skip
            if volume.index in self._disk_numbers(ec2, instance):
                raise ProviderError(f"ec2: instance {instance_id} already has disk "
                                    f"{volume.index}")  # fmt: skip
            if blank:
                target = self._blank_volume(ec2, instance, volume, what)
            else:
                target = self._existing_volume(ec2, region, instance_id, volume, what)
            return self._attach_volume(ec2, instance, target, volume, what, made=blank)

    def _disk_numbers(self, ec2: Any, instance: Mapping[str, Any]) -> set[int]:
        """The disk numbers the instance has: those tagged on its attached volumes (by
        add_disk), and 1..N over its other data volumes (made at launch, in disk order)."""
        instance_id = str(instance["InstanceId"])
        attached = {"Name": "attachment.instance-id", "Values": [instance_id]}
        found = ec2.describe_volumes(Filters=[attached])["Volumes"]
        tagged = {
            str(v["VolumeId"]): _tags(v)[LABEL_DISK]
            for v in found
            if _tags(v).get(LABEL_VOLUME_OF) == instance_id and _tags(v).get(LABEL_DISK)
        }
        numbers = {int(n) for n in tagged.values() if n.isdigit()}
        root = instance.get("RootDeviceName")
        others = [
            m
            for m in instance.get("BlockDeviceMappings") or []
            if m.get("DeviceName") != root and (m.get("Ebs") or {}).get("VolumeId") not in tagged
        ]
        return numbers | set(range(1, len(others) + 1))

    def _volume_labels(self, instance: Mapping[str, Any], volume: Volume) -> dict[str, str]:
        have = _tags(instance)
        labels = {
            k: have[k] for k in (LABEL_INFRASTRUCTURE, LABEL_INSTALLATION, LABEL_NODE) if k in have
        }
        return labels | {
            LABEL_VOLUME_OF: str(instance["InstanceId"]),
            LABEL_DISK: str(volume.index),
        }

    def _blank_volume(
        self, ec2: Any, instance: Mapping[str, Any], volume: Volume, what: str
    ) -> dict[str, Any]:
        """A new volume for disk `volume.index` of the instance, `available` (or the one an
        earlier attempt made, if any); one that ends in `error` is deleted."""
        labels = self._volume_labels(instance, volume)
        mine = [{"Name": f"tag:{k}", "Values": [v]} for k, v in labels.items()]
        usable = {"Name": "status", "Values": ["creating", "available", "in-use"]}
        found = ec2.describe_volumes(Filters=[*mine, usable])["Volumes"]
        if found:
            target = dict(found[0])
        else:
            node = labels.get(LABEL_NODE, str(instance["InstanceId"]))
            owner = f"{labels.get(LABEL_INFRASTRUCTURE)}-{node}"
            zone = instance["Placement"]["AvailabilityZone"]
            target = dict(
                ec2.create_volume(
                    AvailabilityZone=zone,
                    Size=max(1, -(-(volume.size or 0) // 1024**3)),
                    VolumeType=volume.type or "standard",
                    TagSpecifications=self._tag_spec(
                        "volume", {"Name": _slug(f"orbis-{owner}-disk{volume.index}"), **labels}
                    ),
                )
            )
        vid = str(target["VolumeId"])
        if target.get("State") == "in-use":  # attached by the attempt that failed after it
            return target
        ready = self._wait_volume(ec2, vid, "available", what)
        if ready["State"] != "available":
            with suppress(*_BOTO_ERRORS):
                ec2.delete_volume(VolumeId=vid)
            raise ProviderError(f"ec2: {what}: volume {vid} went to {ready['State']}: EC2 could "
                                "not make it (deleted)")  # fmt: skip
        return ready

    def _existing_volume(
        self, ec2: Any, region: str, instance_id: str, volume: Volume, what: str
    ) -> dict[str, Any]:
        """The volume `volume_id` names, which must be `available` (and in the instance's
        region); it stays the user's: only the disk number is tagged on it."""
        url = str(volume.volume_id).strip().rstrip("/")
        where, _, vid = url.rpartition("/")
        where = where.removeprefix("aws://").strip("/")
        if where and where != region:
            raise ProviderError(f"ec2: {what}: volume {vid} is in {where}, the instance in "
                                f"{region}")  # fmt: skip
        if not vid.startswith("vol-"):
            raise NotFound(f"ec2: {what}: {url!r} is not a vol-… id or aws://<region>/vol-…")
        found = dict(ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0])
        if found.get("State") != "available":
            raise ProviderError(f"ec2: {what}: volume {vid} is {found.get('State')}, not "
                                "available")  # fmt: skip
        ec2.create_tags(
            Resources=[vid],
            Tags=[{"Key": LABEL_VOLUME_OF, "Value": instance_id},
                  {"Key": LABEL_DISK, "Value": str(volume.index)}],
        )  # fmt: skip
        return found

    @staticmethod
    def _device(instance: Mapping[str, Any], volume: Volume, what: str) -> str:
        """Launch's device rule: /dev/sd + the last letter of the given device, else the first
        of /dev/sd[f-p] the instance does not use (as sdX or xvdX)."""
        used = {
            str(m["DeviceName"]).removeprefix("/dev/").removeprefix("xvd").removeprefix("sd")
            for m in instance.get("BlockDeviceMappings") or []
            if m.get("DeviceName")
        }
        if volume.device:
            device = f"/dev/sd{volume.device[-1]}"
            if device[-1] in used:
                raise ProviderError(f"ec2: {what}: device {device} is in use")
            return device
        free = next((c for c in "fghijklmnop" if c not in used), None)
        if free is None:
            raise QuotaExceeded(f"ec2: {what}: no free device left (/dev/sd[f-p])")
        return f"/dev/sd{free}"

    def _attach_volume(
        self,
        ec2: Any,
        instance: Mapping[str, Any],
        target: Mapping[str, Any],
        volume: Volume,
        what: str,
        made: bool,
    ) -> str:
        """Attach, wait for `in-use`, and (for a volume made here) set DeleteOnTermination.
        A volume made here that will not attach is deleted (cleanup gets it otherwise)."""
        instance_id, vid = str(instance["InstanceId"]), str(target["VolumeId"])
        try:
            if target.get("State") == "available":
                device = self._device(instance, volume, what)
                ec2.attach_volume(VolumeId=vid, InstanceId=instance_id, Device=device)
            attached = self._wait_volume(ec2, vid, "in-use", what)
            if attached["State"] != "in-use":
                raise ProviderError(f"ec2: {what}: volume {vid} went to {attached['State']} "
                                    "instead of attaching")  # fmt: skip
            here = [a for a in attached.get("Attachments") or []
                    if a.get("InstanceId") == instance_id]  # fmt: skip
            if not here:
                raise ProviderError(f"ec2: {what}: volume {vid} is attached elsewhere")
            device = str(here[0].get("Device") or "")
            if made:
                ec2.modify_instance_attribute(
                    InstanceId=instance_id,
                    BlockDeviceMappings=[
                        {"DeviceName": device, "Ebs": {"DeleteOnTermination": True}}
                    ],
                )
        except Exception:
            if made:
                with suppress(*_BOTO_ERRORS):
                    if target.get("State") == "available":
                        ec2.delete_volume(VolumeId=vid)
            raise
        return device

    def _wait_volume(self, ec2: Any, vid: str, wanted: str, what: str) -> dict[str, Any]:
        """Poll until the volume is `wanted` or `error` (returned either way); gone is an
        error naming it, still elsewhere after `launch_timeout` a Transient."""

        def check() -> dict[str, Any] | None:
            try:
                found = ec2.describe_volumes(VolumeIds=[vid])["Volumes"]
            except botocore.exceptions.ClientError as err:
                if _code(err) == "InvalidVolume.NotFound":
                    raise ProviderError(f"ec2: {what}: volume {vid} vanished") from None
                raise
            if not found:
                return None  # a new id may be unknown for a while yet
            state = str(found[0].get("State"))
            attaching = any(a.get("State") != "attached" for a in found[0].get("Attachments") or [])
            if state == "error" or (state == wanted and not attaching):
                return dict(found[0])
            return None

        return self._wait(f"{what}: volume {vid} to be {wanted}", check, self.launch_timeout)
