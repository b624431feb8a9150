"""Cinder volumes: IM's boot-time block device mapping, and `add_disk` (IM's alterVM with a
new disk) on a running server, with the labels that let destroy and cleanup find what it made.
"""

from __future__ import annotations

import re
import time
from contextlib import suppress
from typing import Any

import openstack.exceptions as os_exc
from keystoneauth1 import exceptions as ks_exc

from orbis.model.infrastructure import Compute, Volume
from orbis.placement.fit import GB
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    LABEL_NODE,
    NotFound,
    ProviderError,
    Transient,
)
from orbis.providers.openstack.session import OpenStackSession, _slug

# server metadata: the RADL disk numbers that became Cinder volumes, in mapping order ("1,3")
DISKS_LABEL = "orbis.disks"


# Cinder metadata of a volume `add_disk` made (besides the server's labels): the server and the
# RADL disk number it was made for (destroy deletes it with that server; a retry reuses it)
SERVER_LABEL = "orbis.server"


DISK_LABEL = "orbis.disk"


# Cinder deletes a volume only in these
_VOLUME_DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")


_VOLUME_ATTACHING = ("reserved", "attaching", "in-use")


_ROOT_DEVICE = re.compile(r"/dev/(?:x?vd|sd|hd)a")  # Nova names the boot disk first


def _volume_disks(compute: Compute) -> list[int]:
    """The RADL disk numbers `_block_devices` maps to Cinder volumes, in its order."""
    return [v.index for v in sorted(compute.volumes, key=lambda v: v.index)
            if v.volume_id or (v.size and (v.type or "").lower() != "ephemeral")]  # fmt: skip


def _block_devices(kind: str, image_id: str, boot_size: int | None,
                   compute: Compute) -> list[dict[str, Any]]:  # fmt: skip
    """IM's boot-time mapping: the boot disk, existing volumes kept, blank ones deleted with the
    server; devices named vdX. Empty when Nova's default (the image on local disk) will do."""
    if kind == "volume":
        boot = {"boot_index": 0, "uuid": image_id, "source_type": "volume",
                "destination_type": "volume", "delete_on_termination": False}  # fmt: skip
    elif boot_size:
        boot = {"boot_index": 0, "uuid": image_id, "source_type": "image",
                "destination_type": "volume", "volume_size": boot_size,
                "delete_on_termination": True}  # fmt: skip
    else:
        boot = {"boot_index": 0, "uuid": image_id, "source_type": "image",
                "destination_type": "local", "delete_on_termination": True}  # fmt: skip
    extra = []
    for volume in sorted(compute.volumes, key=lambda v: v.index):
        entry: dict[str, Any] = {"boot_index": -1}
        if volume.volume_id:
            entry |= {"uuid": volume.volume_id.rstrip("/").rsplit("/", 1)[-1],
                      "source_type": "volume", "destination_type": "volume",
                      "delete_on_termination": False}  # fmt: skip
        elif volume.size:
            ephemeral = (volume.type or "").lower() == "ephemeral"
            entry |= {"source_type": "blank", "volume_size": -(-volume.size // GB),
                      "destination_type": "local" if ephemeral else "volume",
                      "guest_format": volume.fs_type or "ext3",
                      "delete_on_termination": True}  # fmt: skip
            if volume.type and not ephemeral:
                entry["volume_type"] = volume.type
        else:
            continue
        if volume.device:
            entry["device_name"] = f"/dev/vd{volume.device[-1]}"
        extra.append(entry)
    if kind == "image" and not boot_size and not extra:
        return []
    return [boot, *extra]


class Volumes(OpenStackSession):
    """Data disks added to a running server, and their deletion."""

    def add_disk(self, provider_id: str, volume: Volume) -> str:
        """IM's alterVM with a new disk: a blank Cinder volume (named and labelled like the
        server, plus SERVER_LABEL and DISK_LABEL, so destroy and cleanup find it) waited for
        until `available`, or the existing volume `volume_id`, which must be available; either
        attached through Nova and waited for until `in-use`, the disk number then appended to
        the server's DISKS_LABEL (what `snapshot` counts by). Returns Cinder's device for the
        attachment (Nova's answer when Cinder names none). A retry after a crash reuses the
        volume made for the same server and disk."""
        what = f"add disk {volume.index} to {provider_id}"
        blank = not volume.volume_id
        if blank and (volume.type or "").lower() == "ephemeral":
            raise ProviderError(f"{self.site}: {what}: an ephemeral disk can only be made when "
                                "the server boots; give it a volume type")  # fmt: skip
        if blank and not volume.size:
            raise ProviderError(f"{self.site}: {what}: the disk has neither a size nor a volume")
        with self._errors(what), self._disk_locks[provider_id]:
            server = self._server(provider_id)
            if server is None:
                raise NotFound(f"{self.site}: {what}: server {provider_id} not found")
            if not self._mine(server.metadata or {}):  # its volumes would be no one's
                raise ProviderError(f"{self.site}: {what}: server {provider_id} was not made "
                                    "by this Orbis")  # fmt: skip
            numbers = self._disk_numbers(server)
            if volume.index in numbers:
                raise ProviderError(f"{self.site}: server {provider_id} already has disk "
                                    f"{volume.index}")  # fmt: skip
            if blank:
                target = self._blank_volume(server, volume, what)
            else:
                target = self._existing_volume(volume, what)
            device = self._attach(server, target, volume, what, made=blank)
            self.conn.compute.set_server_metadata(
                server, **{DISKS_LABEL: ",".join(map(str, [*numbers, volume.index]))})
            return device

    def _disk_numbers(self, server: Any) -> list[int]:
        """The RADL disk numbers of the server's data volumes, in attachment order (DISKS_LABEL;
        a server launched without the note: 1..N over its data volumes, as `_data_volume`)."""
        recorded = str((server.metadata or {}).get(DISKS_LABEL) or "")
        if recorded:
            return [int(n) for n in recorded.split(",") if n.strip().isdigit()]
        attached = [a for a in self.conn.compute.volume_attachments(server)
                    if not _ROOT_DEVICE.fullmatch(str(a.device or ""))]  # fmt: skip
        return list(range(1, len(attached) + 1))

    def _blank_volume(self, server: Any, volume: Volume, what: str) -> Any:
        """A new volume for disk `volume.index` of the server, `available` (the one a failed
        earlier attempt made, if any); one that ends in error is deleted."""
        conn, meta = self.conn, server.metadata or {}
        labels = {k: str(meta[k]) for k in (LABEL_INFRASTRUCTURE, LABEL_INSTALLATION,
                                            LABEL_NODE) if meta.get(k)}  # fmt: skip
        labels |= {SERVER_LABEL: str(server.id), DISK_LABEL: str(volume.index)}
        found = next((v for v in self._labelled_volumes()
                      if (v.metadata or {}).get(SERVER_LABEL) == labels[SERVER_LABEL]
                      and (v.metadata or {}).get(DISK_LABEL) == labels[DISK_LABEL]
                      and not str(v.status).startswith("error")), None)  # fmt: skip
        if found is None:
            infra, node = labels.get(LABEL_INFRASTRUCTURE), labels.get(LABEL_NODE)
            owner = f"{infra}-{node}" if infra and node else str(server.name or server.id)
            found = conn.block_storage.create_volume(
                name=_slug(f"orbis-{owner}-disk{volume.index}"), size=-(-(volume.size or 0) // GB),
                description=f"Disk {volume.index} of {owner}, created by Orbis",
                volume_type=volume.type or None, metadata=labels)  # fmt: skip
        label = f"volume {found.name} ({found.id})"
        if found.status in _VOLUME_ATTACHING:  # attached by the attempt that failed after it
            return found
        ready = self._wait_volume(found.id, "available", label, what)
        if ready.status != "available":
            with suppress(os_exc.SDKException):
                conn.block_storage.delete_volume(found.id, ignore_missing=True)
            raise ProviderError(f"{self.site}: {what}: {label} went to {ready.status}: the "
                                "cloud could not make it (deleted)")  # fmt: skip
        return ready

    def _existing_volume(self, volume: Volume, what: str) -> Any:
        """The volume `volume_id` names (its basename, as in the boot-time mapping), which
        must be `available`; it stays the user's: only ever detached."""
        ident = str(volume.volume_id).rstrip("/").rsplit("/", 1)[-1]
        try:
            found = self.conn.block_storage.get_volume(ident)
        except os_exc.NotFoundException:
            raise NotFound(f"{self.site}: {what}: volume {ident} not found") from None
        if found.status != "available":
            raise ProviderError(f"{self.site}: {what}: volume {found.name or ident} ({ident}) "
                                f"is {found.status}, not available")  # fmt: skip
        return found

    def _attach(self, server: Any, target: Any, volume: Volume, what: str, made: bool) -> str:
        """Attach `target` through Nova and wait for Cinder to say `in-use`; the device Cinder
        records for this server, else Nova's answer. A volume made here that will not attach is
        deleted (when Cinder lets it: cleanup gets the rest by its labels)."""
        conn, label = self.conn, f"volume {target.name or target.id} ({target.id})"
        answer = None
        try:
            if target.status == "available":
                device = {"device": f"/dev/vd{volume.device[-1]}"} if volume.device else {}
                answer = conn.compute.create_volume_attachment(server, target.id, **device)
            attached = self._wait_volume(target.id, "in-use", label, what)
            if attached.status != "in-use":
                raise ProviderError(f"{self.site}: {what}: {label} went to {attached.status} "
                                    "instead of attaching")  # fmt: skip
        except Exception:
            if made:
                with suppress(os_exc.SDKException):
                    conn.block_storage.delete_volume(target.id, ignore_missing=True)
            raise
        for attachment in attached.attachments or []:
            if attachment.get("server_id") == server.id and attachment.get("device"):
                return str(attachment["device"])
        return str(getattr(answer, "device", None) or "")

    def _wait_volume(self, volume_id: str, wanted: str, label: str, what: str) -> Any:
        """Poll Cinder until the volume is `wanted` or in an error status (returned either
        way); gone or still elsewhere after the timeout is an error naming it."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                found = self.conn.block_storage.get_volume(volume_id)
            except os_exc.NotFoundException:
                raise ProviderError(f"{self.site}: {what}: {label} vanished") from None
            if found.status == wanted or str(found.status).startswith("error"):
                return found
            if time.monotonic() > deadline:
                raise Transient(f"{self.site}: {what}: {label} still {found.status} after "
                                f"{self.timeout:g} s")  # fmt: skip
            time.sleep(self.poll_interval)

    def _labelled_volumes(self) -> list[Any]:
        """The Cinder volumes this installation made (add_disk's); none where there is no
        Cinder."""
        try:
            volumes = list(self.conn.block_storage.volumes())
        except (ks_exc.EndpointNotFound, os_exc.EndpointNotFound,
                os_exc.ServiceDisabledException):  # fmt: skip
            return []
        return [v for v in volumes if self._mine(v.metadata or {})]

    def _delete_volumes(self, key: str, value: str, what: str) -> None:
        """Delete our volumes whose label `key` is `value`, each once Cinder lets it (IM waits
        for `available`: Nova detaches them as the server goes)."""
        for found in self._labelled_volumes():
            if (found.metadata or {}).get(key) != value:
                continue
            label = f"volume {found.name or found.id} ({found.id})"
            deadline = time.monotonic() + self.timeout
            while found.status not in _VOLUME_DELETABLE:
                if time.monotonic() > deadline:
                    raise Transient(f"{self.site}: {what}: {label} still {found.status} after "
                                    f"{self.timeout:g} s")  # fmt: skip
                time.sleep(self.poll_interval)
                try:
                    found = self.conn.block_storage.get_volume(found.id)
                except os_exc.NotFoundException:
                    break
            else:
                self.conn.block_storage.delete_volume(found.id, ignore_missing=True)
