"""Glance: images (the seed's and snapshots: queued -> saving -> active), json-patch, delete."""

from __future__ import annotations

import re
import uuid
from typing import Any

from orbis.testing.standins.openstack.common import (
    Reply,
    _fill,
)
from orbis.testing.standins.openstack.reservation import Reservation


class Images(Reservation):
    def _glance(self, method: str, path: str, query: dict[str, str], body: Any
                ) -> tuple[int, Any]:  # fmt: skip
        def view(image: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in image.items() if not k.startswith("_")} | {
                "self": f"/v2/images/{image['id']}", "schema": "/v2/schemas/image",
                "file": f"/v2/images/{image['id']}/file"}  # fmt: skip
        if method == "GET" and path == "/images":
            found = [view(i) for i in self.images.values() if self._matches(i, query)]
            return 200, {"images": found, "first": "/v2/images", "schema": "/v2/schemas/images"}
        m = re.fullmatch(r"/images/([^/]+)", path)
        if m is None or m[1] not in self.images:
            raise Reply(404, _fill(self.errors["glance_not_found"], id=m[1] if m else path))
        image = self.images[m[1]]
        if method == "GET":
            self._advance_image(image)
            return 200, view(image)
        if method == "PATCH":
            return 200, view(self._patch_image(image, body))
        if method == "DELETE":
            del self.images[image["id"]]
            self._release_volume(image)
            return 204, None
        raise self._glance_error(405, "Method Not Allowed", f"{method} is not allowed")

    def _glance_error(self, status: int, title: str, message: str) -> Reply:
        body = _fill(self.errors["glance"], title=title, message=message)
        return Reply(status, body | {"code": status})

    def _new_image(self, name: str, *, disk_format: str, container_format: str = "bare",
                   properties: dict[str, Any] | None = None, volume: str | None = None
                   ) -> dict[str, Any]:  # fmt: skip
        """A private Glance image in `queued`, as a snapshot or an upload starts one."""
        image_id = str(uuid.uuid4())
        image = {**(properties or {}), "id": image_id, "name": name, "status": "queued",
                 "visibility": "private", "disk_format": disk_format,
                 "container_format": container_format, "min_disk": 0, "min_ram": 0,
                 "size": None, "virtual_size": None, "checksum": None, "protected": False,
                 "os_hidden": False, "owner": self.project["id"], "tags": [],
                 "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
                 "_polls": 0, "_volume": volume}  # fmt: skip
        self.images[image_id] = image
        return image

    def _advance_image(self, image: dict[str, Any]) -> None:
        """One GET of an image being saved: queued -> saving -> active (or `image_fault`)."""
        if image["status"] not in ("queued", "saving"):
            return
        image["_polls"] += 1
        if image["_polls"] < self.image_polls:
            return
        image["_polls"] = 0
        if image["status"] == "queued":
            image["status"] = "saving"
            return
        image["status"] = self.image_fault or "active"
        if image["status"] == "active":
            image |= {"size": 1073741824, "checksum": uuid.uuid4().hex}
        self._release_volume(image)

    def _release_volume(self, image: dict[str, Any]) -> None:
        """The volume an upload came from leaves `uploading` once its image is done or gone."""
        volume = self.volumes.get(image.pop("_volume", None) or "")
        if volume and volume["status"] == "uploading":
            volume["status"] = volume.pop("_before_upload", "available")

    def _patch_image(self, image: dict[str, Any], ops: Any) -> dict[str, Any]:
        """Glance's json-patch (application/openstack-images-v2.1-json-patch) on properties."""
        kind = self._headers.get("Content-Type", "")
        if kind != "application/openstack-images-v2.1-json-patch" or not isinstance(ops, list):
            raise self._glance_error(415, "Unsupported Media Type",
                                     f"Content type {kind} is not supported")  # fmt: skip
        read_only = {"id", "status", "created_at", "updated_at", "size", "virtual_size",
                     "checksum", "owner", "self", "file", "schema", "locations"}  # fmt: skip
        for op in ops:
            key = str(op.get("path", "")).lstrip("/")
            if key in read_only or key.startswith("_"):
                raise self._glance_error(403, "Forbidden", f"Attribute '{key}' is read-only.")
            if op.get("op") in ("add", "replace"):
                image[key] = op.get("value")
            elif op.get("op") == "remove" and key in image:
                del image[key]
            else:
                raise self._glance_error(409, "Conflict", f"Property {key} does not exist.")
        return image

    def _image_quota(self, service: str) -> None:
        """Refuse a new image over the project's image quota, in the calling service's words."""
        used = sum(1 for i in self.images.values() if i.get("owner") == self.project["id"])
        limit = self.quota["images"]
        if used < limit:
            return
        if service == "nova":
            raise Reply(403, _fill(self.errors["nova_quota"], what="images", req=1, used=used,
                                   limit=limit))  # fmt: skip
        message = f"Image quota exceeded ({used} of {limit} images)"
        raise Reply(413, _fill(self.errors["cinder_over_limit"], message=message))

