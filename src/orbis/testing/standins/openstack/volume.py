"""Cinder: volumes (create within quotas, creating -> available, delete), upload to an image."""

from __future__ import annotations

import re
import uuid
from typing import Any

from orbis.testing.standins.openstack.common import (
    Reply,
    _fill,
)
from orbis.testing.standins.openstack.image import Images


class Volumes(Images):
    def _cinder(self, method: str, path: str, query: dict[str, str], body: Any
                ) -> tuple[int, Any]:  # fmt: skip
        def view(volume: dict[str, Any]) -> dict[str, Any]:
            attached = [{"server_id": volume["_server"], "device": volume.get("_device"),
                         "volume_id": volume["id"], "attachment_id": volume["id"]}] \
                if volume.get("_server") else []  # fmt: skip
            return {"metadata": {}} | {k: v for k, v in volume.items() if not k.startswith("_")} \
                | {"attachments": attached}  # fmt: skip
        if re.fullmatch(r"/os-quota-sets/[^/]+", path):
            in_use = len(self.volumes)
            gigabytes = sum(v.get("size") or 0 for v in self.volumes.values())
            return 200, {"quota_set": {"id": self.project["id"],
                "volumes": {"limit": self.quota["volumes"], "in_use": in_use, "reserved": 0},
                "gigabytes": {"limit": self.quota["gigabytes"], "in_use": gigabytes,
                              "reserved": 0}}}  # fmt: skip
        if method == "GET" and path in ("/volumes", "/volumes/detail"):
            return 200, {"volumes": [view(v) for v in self.volumes.values()]}
        if method == "POST" and path == "/volumes":
            return 202, {"volume": view(self._create_volume((body or {}).get("volume") or {}))}
        if method == "GET" and path == "/types":
            return 200, {"volume_types": list(self.volume_types.values())}
        if (m := re.fullmatch(r"/volumes/([^/]+)", path)) and m[1] in self.volumes:
            volume = self.volumes[m[1]]
            if method == "DELETE":
                self._delete_volume(volume)
                return 202, None
            self._advance_volume(volume)
            return 200, {"volume": view(volume)}
        m = re.fullmatch(r"/volumes/([^/]+)/action", path)
        if m and m[1] in self.volumes and method == "POST" and body:
            return self._volume_action(self.volumes[m[1]], body)
        raise Reply(404, {"itemNotFound": {"code": 404, "message": f"{path} not found"}})

    def _create_volume(self, asked: dict[str, Any]) -> dict[str, Any]:
        """Cinder's POST /volumes (a blank one): `creating`, within the project's quotas."""
        size = asked.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise Reply(400, _fill(self.errors["cinder_bad_request"], message=(
                f"Invalid input received: 'size' parameter must be an integer and greater than "
                f"0 (got {size!r})")))  # fmt: skip
        kind = asked.get("volume_type") or "__DEFAULT__"
        if kind not in self.volume_types:
            raise Reply(404, _fill(self.errors["cinder_not_found"],
                                   message=f"Volume type with name {kind} could not be found."))
        count, limit = len(self.volumes), self.quota["volumes"]
        if count + 1 > limit:
            raise Reply(413, _fill(self.errors["cinder_over_limit"], message=(
                f"Maximum number of volumes allowed ({limit}) exceeded for quota "
                "'volumes'.")))  # fmt: skip
        used, limit = sum(v.get("size") or 0 for v in self.volumes.values()), \
            self.quota["gigabytes"]  # fmt: skip
        if used + size > limit:
            raise Reply(413, _fill(self.errors["cinder_over_limit"], message=(
                f"Requested volume or snapshot exceeds allowed gigabytes quota. Requested "
                f"{size}G, quota is {limit}G and {used}G has been consumed.")))  # fmt: skip
        volume_id = str(uuid.uuid4())
        self.volumes[volume_id] = {
            "id": volume_id, "status": "creating", "size": size, "name": asked.get("name"),
            "description": asked.get("description"), "volume_type": kind,
            "metadata": {str(k): str(v) for k, v in (asked.get("metadata") or {}).items()},
            "availability_zone": asked.get("availability_zone") or "nova",
            "bootable": "false", "encrypted": False, "multiattach": False,
            "user_id": "u-demo", "os-vol-tenant-attr:tenant_id": self.project["id"],
            "created_at": "2024-01-01T00:00:00.000000", "updated_at": None, "_polls": 0}
        return self.volumes[volume_id]

    def _advance_volume(self, volume: dict[str, Any]) -> None:
        """One GET of a volume: creating -> available (or `volume_fault`), attaching -> in-use,
        detaching -> available, each after `volume_polls` GETs."""
        steps = {"creating": self.volume_fault or "available", "attaching": "in-use",
                 "detaching": "available"}  # fmt: skip
        if volume["status"] not in steps:
            return
        volume["_polls"] = volume.get("_polls", 0) + 1
        if volume["_polls"] < self.volume_polls:
            return
        if volume["status"] == "detaching":
            volume |= {"_server": None, "_device": None, "_later": False}
        volume |= {"status": steps[volume["status"]], "_polls": 0}

    def _delete_volume(self, volume: dict[str, Any]) -> None:
        """Cinder's DELETE: only a detached volume in a settled state (202, then gone)."""
        settled = ("available", "error", "error_restoring", "error_extending", "error_managing")
        if volume["status"] not in settled or volume.get("_server"):
            raise Reply(400, _fill(self.errors["cinder_bad_request"], message=(
                "Invalid volume: Volume status must be available or error or error_restoring "
                "or error_extending or error_managing and must not be migrating, attached, "
                "belong to a group, have snapshots or be disassociated from snapshots after "
                "volume transfer.")))  # fmt: skip
        del self.volumes[volume["id"]]
        if self.boot:
            self.boot.remove_volume(volume["id"])

    def _volume_action(self, volume: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        """Cinder's os-volume_upload_image: the volume to a new Glance image (an attached one
        only with `force`); the volume is `uploading` until the image is done."""
        action = next(iter(body))
        if action != "os-volume_upload_image":
            raise Reply(400, _fill(self.errors["cinder_bad_request"],
                                   message=f"There is no such action: {action}"))  # fmt: skip
        asked = body[action] or {}
        force = str(asked.get("force", False)).lower() in ("true", "1", "yes", "on")
        status = volume["status"]
        if status not in ("available", "in-use") or (status == "in-use" and not force):
            raise Reply(400, _fill(self.errors["cinder_bad_request"], message=(
                f"Invalid volume: Volume {volume['id']} status must be available or in-use "
                f"with force, but current status is: {status}.")))  # fmt: skip
        if not asked.get("image_name"):
            raise Reply(400, _fill(self.errors["cinder_bad_request"],
                                   message="Invalid input: image_name is required"))  # fmt: skip
        self._image_quota("cinder")
        disk_format = asked.get("disk_format") or "raw"
        container_format = asked.get("container_format") or "bare"
        image = self._new_image(asked["image_name"], disk_format=disk_format,
                                container_format=container_format,
                                volume=volume["id"])  # fmt: skip
        volume |= {"_before_upload": status, "status": "uploading"}
        volume_type = volume.get("volume_type")
        return 202, {"os-volume_upload_image": {
            "id": volume["id"], "updated_at": "2024-01-01T00:00:00.000000",
            "status": "uploading", "display_description": volume.get("description"),
            "size": volume.get("size"), "image_id": image["id"], "image_name": image["name"],
            "volume_type": {"name": volume_type} if volume_type else None,
            "container_format": container_format, "disk_format": disk_format}}  # fmt: skip

    def add_volume(self, size: int = 1, name: str = "data") -> str:
        """An existing, available volume (as a user would have made), for attach tests."""
        volume_id = str(uuid.uuid4())
        self.volumes[volume_id] = {"id": volume_id, "status": "available", "size": size,
                                   "name": name, "volume_type": None, "metadata": {}}  # fmt: skip
        return volume_id

