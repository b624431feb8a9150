"""Nova's servers tied to real containers, when the stand-in has a ContainerBoot.

A server stays BUILD while its container boots (key pair, user_data), ends ERROR with the boot's
failure as its fault, and its container goes with it; a floating IP associated with one of its
ports plugs the container into the pool's podman network at that very address.
"""

from __future__ import annotations

import base64
import binascii
import re
from concurrent.futures import Future
from typing import Any

from orbis.testing.standins.openstack.boot import BootError, Nic, ServerBoot
from orbis.testing.standins.openstack.volume import Volumes

BOOT_WAIT = 60.0  # how long a floating-IP association waits for its server's container


class Booting(Volumes):
    def _boot_server(self, server: dict[str, Any]) -> None:
        """Start the server's container (in the background); a refusal is the server's fault."""
        if self.boot is None:
            return
        key = self.keypairs.get(server["key_name"] or "", {}).get("public_key")
        encoded = server.get("_user_data")
        try:
            user_data = base64.b64decode(encoded, validate=True).decode() if encoded else None
        except (binascii.Error, UnicodeDecodeError):
            user_data = None  # schema.py refused non-base64 already; not UTF-8: not ours
        volumes = {vid: device for vid, device in server["_attachments"]}
        spec = ServerBoot(server["id"], _hostname(server["name"]), self._nics(server["id"]),
                          key, user_data, volumes)  # fmt: skip
        try:
            server["_boot"] = self.boot.boot(spec)
        except Exception as exc:  # noqa: BLE001 - the engine's refusal is the server's fault
            server["_fault"] = f"boot failed: {exc}"

    def _nics(self, server_id: str) -> list[Nic]:
        nics = []
        for port in self.ports.values():
            if port["device_id"] != server_id:
                continue
            fixed = port["fixed_ips"][0]
            subnet = self.subnets[fixed["subnet_id"]]
            net = self.networks[port["network_id"]]
            nics.append(Nic(net["id"], subnet["cidr"], subnet["gateway_ip"],
                            fixed["ip_address"], bool(net.get("router:external"))))  # fmt: skip
        return nics

    def _booted(self, server: dict[str, Any]) -> bool:
        """False while the container boots; a failed boot becomes the server's fault."""
        future: Future[None] | None = server.get("_boot")
        if future is None:
            return True
        if not future.done():
            return False
        error = future.exception()
        if error is not None and not server.get("_fault"):
            server["_fault"] = str(error)
        return True

    def _unboot(self, server_id: str, volumes: list[str]) -> None:
        """The container of a deleted server, then the volumes deleted with it."""
        if self.boot is None:
            return
        self.boot.delete(server_id)
        for volume_id in volumes:
            self.boot.remove_volume(volume_id)

    def _float(self, fip: dict[str, Any], port: dict[str, Any] | None) -> None:
        """Plug the container of `port`'s server into the pool at the floating IP (or unplug
        the one the floating IP was on when `port` is None)."""
        if self.boot is None:
            return
        if port is None:
            old = self.ports.get(fip.get("port_id") or "")
            if old:
                self.boot.detach(old["device_id"], fip["floating_network_id"])
            return
        server = self.servers.get(port["device_id"])
        future: Future[None] | None = (server or {}).get("_boot")
        if future is None:
            return  # a router's or a foreign port: no container behind it
        try:
            future.result(timeout=BOOT_WAIT)
        except BootError:
            return  # the server is in ERROR: nothing to plug in
        net = self.networks[fip["floating_network_id"]]
        subnet = self.subnets[net["subnets"][0]]
        self.boot.attach(port["device_id"], Nic(net["id"], subnet["cidr"], subnet["gateway_ip"],
                                                fip["floating_ip_address"], True))  # fmt: skip


def _hostname(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "server"
