"""Glance images: a template image (`ost://host/[image/|volume/]id`, a bare id or name,
`egi://` through EGI's cloud-info, or none: by OS), saving a disk (`snapshot`: Nova's
createImage for disk 0, Cinder's upload for a data volume) and deleting an image Orbis saved.
"""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any
from urllib.parse import urlsplit

import openstack.exceptions as os_exc

from orbis.model.infrastructure import Compute
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    LABEL_NODE,
    Image,
    NotFound,
    ProviderError,
)
from orbis.providers.openstack.catalogue import Catalogue
from orbis.providers.openstack.volumes import _ROOT_DEVICE, DISKS_LABEL

_IMAGE_FAILED = ("killed", "deleted", "pending_delete")  # Glance: the image will never be usable


def _ost_parts(url: str) -> tuple[str, str, str]:
    """(host name, 'image' | 'volume', id) of ost://host[:port]/[image/|volume/]id."""
    host, _, path = url.removeprefix("ost://").partition("/")
    parts = path.strip("/").split("/")
    kind = parts[0] if len(parts) == 2 and parts[0] in ("image", "volume") else "image"
    return urlsplit(f"//{host}").hostname or "", kind, parts[-1]


def _image_labels(image: Any) -> dict[str, str]:
    """The Orbis labels of a Glance image (custom properties, which the SDK gathers)."""
    props = dict(image.properties or {})
    return {k: str(v) for k, v in props.items() if k.startswith("orbis.")}


class Images(Catalogue):
    """The project's images, the one a node boots from, disks saved as images."""

    def images(self) -> list[Image]:
        with self._errors("list images"):
            return [Image(id=i.id, name=i.name or i.id, url=f"ost://{self.host}/{i.id}",
                          os_distro=i.os_distro, os_version=i.os_version)
                    for i in self.conn.image.images() if i.status == "active"]  # fmt: skip

    def snapshot(self, provider_id: str, disk: int, name: str) -> str:
        """Disk 0 through Nova's createImage, a data volume through Cinder's upload to Glance;
        either way the new Glance image carries the server's Orbis labels as properties (so
        `delete_image` knows it for ours) and is waited for until `active`. Cleanup leaves these
        images alone: whether they outlive the infrastructure is the service's call."""
        what = f"snapshot of disk {disk} of {provider_id}"
        with self._errors(what):
            server = self._server(provider_id)
            if server is None:
                raise NotFound(f"{self.site}: {what}: server {provider_id} not found")
            meta = server.metadata or {}
            labels = {k: str(meta[k]) for k in (LABEL_INFRASTRUCTURE, LABEL_INSTALLATION,
                                                LABEL_NODE) if meta.get(k)}  # fmt: skip
            if disk == 0:
                image = self.conn.compute.create_server_image(server, name, metadata=labels)
                if image is None:  # the SDK looks it up right after Nova answers
                    raise ProviderError(f"{self.site}: {what}: Nova made image {name} but "
                                        "Glance does not show it")  # fmt: skip
                image_id = str(image.id)
            else:
                volume_id = self._data_volume(server, disk)
                # an attached volume needs `force` (the site may refuse it: enable_force_upload)
                volumes = self.conn.block_storage
                answer = volumes.upload_volume_to_image(volume_id, name, force=True)
                image_id = str(answer["image_id"])
                if labels:  # Cinder's upload takes no properties: set them on the new image
                    self.conn.image.update_image(image_id, **labels)
            self._wait_image(image_id, name, what)
            return f"ost://{self.host}/{image_id}"

    def delete_image(self, url: str) -> None:
        what = f"delete image {url}"
        host, kind, ident = _ost_parts(url)
        if not url.startswith("ost://") or kind != "image" or not ident:
            raise ProviderError(f"{self.site}: {url} is not an OpenStack image URL")
        if host != self.host:
            raise ProviderError(f"{self.site}: image {url} belongs to another site "
                                f"(this one is {self.host})")  # fmt: skip
        with self._errors(what):
            try:
                image = self.conn.image.get_image(ident)
            except os_exc.NotFoundException:
                return
            if not self._mine(_image_labels(image)):
                raise ProviderError(f"{self.site}: image {image.name or ident} ({ident}) was not "
                                    "saved by Orbis here; it is left alone")  # fmt: skip
            self.conn.image.delete_image(ident, ignore_missing=True)

    def _data_volume(self, server: Any, disk: int) -> str:
        """The Cinder volume of RADL disk.`disk`: the data volumes in the order launch mapped
        them (the order Nova lists the attachments in), the boot volume left out; launch notes
        which disk numbers became volumes (ephemeral ones do not) under DISKS_LABEL."""
        missing = NotFound(f"{self.site}: server {server.id} has no disk {disk}")
        attached = [a for a in self.conn.compute.volume_attachments(server)
                    if not _ROOT_DEVICE.fullmatch(str(a.device or ""))]  # fmt: skip
        recorded = str((server.metadata or {}).get(DISKS_LABEL) or "")
        if recorded:
            numbers = [int(n) for n in recorded.split(",") if n.strip().isdigit()]
            if disk not in numbers:
                raise missing
            position = numbers.index(disk)
        else:  # a server launched without the note: the N-th data volume
            position = disk - 1
        if position < 0 or position >= len(attached):
            raise missing
        return str(attached[position].volume_id)

    def _wait_image(self, image_id: str, name: str, what: str) -> Any:
        """Poll Glance until the image is `active`; `killed`/`deleted` (removed, since no one
        can use it) or the snapshot timeout is an error that names the image."""
        deadline = time.monotonic() + self.snapshot_timeout
        label = f"image {name} ({image_id})"
        while True:
            try:
                image = self.conn.image.get_image(image_id)
            except os_exc.NotFoundException:
                raise ProviderError(f"{self.site}: {what}: {label} vanished while being "
                                    "saved") from None  # fmt: skip
            if image.status == "active":
                return image
            if image.status in _IMAGE_FAILED:
                with suppress(os_exc.SDKException):
                    self.conn.image.delete_image(image_id, ignore_missing=True)
                raise ProviderError(f"{self.site}: {what}: {label} is {image.status}: the "
                                    "cloud could not save the disk")  # fmt: skip
            if time.monotonic() > deadline:
                raise ProviderError(f"{self.site}: {what}: {label} still {image.status} after "
                                    f"{self.snapshot_timeout:g} s (it may yet finish)")  # fmt: skip
            time.sleep(self.poll_interval)

    def _image(self, wanted: str | None, compute: Compute) -> tuple[str, str]:
        """('image' | 'volume', id) for a template image: ost://host/id, ost://host/image/id,
        ost://host/volume/id, a bare id or a name; none at all → by os distribution/version."""
        if not wanted:
            matches = [i for i in self.images()
                       if compute.os_distribution and
                       compute.os_distribution.lower() in (i.os_distro or i.name).lower()
                       and (not compute.os_version or compute.os_version in
                            (i.os_version or i.name))]  # fmt: skip
            if not matches:
                raise NotFound(f"{self.site}: no image given for {compute.name} and none "
                               f"matches its operating system")  # fmt: skip
            return "image", matches[0].id
        kind, ident = "image", wanted
        if wanted.startswith("ost://"):
            host, kind, ident = _ost_parts(wanted)
            if host != self.host:
                raise NotFound(f"{self.site}: image {wanted} belongs to another site "
                               f"(this one is {self.host})")  # fmt: skip
        elif wanted.startswith("egi://"):  # an EGI AppDB image: its Glance id at this site
            from orbis.providers import egi  # only EGI users need the cloud-info client

            ident = egi.cloud_info().resolve_image(
                wanted, vo=self._auth.get("vo"), keystone_host=self.host)
        elif "://" in wanted:
            raise NotFound(f"{self.site}: {wanted} is not an OpenStack image URL")
        if kind == "volume":
            self.conn.block_storage.get_volume(ident)  # NotFound if it is not there
            return kind, ident
        try:
            image = self.conn.image.find_image(ident, ignore_missing=False)
        except os_exc.NotFoundException:
            image = None
        if image is None or image.status != "active":
            raise NotFound(f"{self.site}: image {wanted} not found (or not active)")
        return kind, image.id
