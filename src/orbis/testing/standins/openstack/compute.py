"""Nova: flavors, key pairs, servers (create, poll, actions, delete), volume attachments,
metadata, createImage and quotas."""

from __future__ import annotations

import re
import uuid
from typing import Any

from orbis.testing.standins.openstack.common import (
    USER,
    Reply,
    _fill,
)
from orbis.testing.standins.openstack.network import Network
from orbis.testing.standins.openstack.schema import server_errors


class Compute(Network):
    def _nova_error(self, status: int, message: str) -> Reply:
        kind = {400: "nova_bad_request", 404: "nova_not_found", 409: "nova_conflict"}[status]
        return Reply(status, _fill(self.errors[kind], message=message))

    def _flavor_view(self, flavor: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in flavor.items() if k != "extra_specs"}
        view.setdefault("OS-FLV-DISABLED:disabled", False)
        view |= {"os-flavor-access:is_public": True, "swap": "", "rxtx_factor": 1.0,
                 "OS-FLV-EXT-DATA:ephemeral": 0,
                 "links": [{"rel": "self", "href": f"{self.url}/compute/v2.1/flavors/{flavor['id']}"}]}  # fmt: skip  # noqa: E501
        return view

    def _server_view(self, server: dict[str, Any]) -> dict[str, Any]:
        addresses: dict[str, list[dict[str, Any]]] = {}
        for port in self.ports.values():
            if port["device_id"] != server["id"]:
                continue
            net = self.networks[port["network_id"]]["name"]
            for fixed in port["fixed_ips"]:
                addresses.setdefault(net, []).append({"version": 4, "addr": fixed["ip_address"],
                    "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})  # fmt: skip  # noqa: E501
            for fip in self.floatingips.values():
                if fip["port_id"] == port["id"]:
                    addresses[net].append({"version": 4, "addr": fip["floating_ip_address"],
                        "OS-EXT-IPS:type": "floating",
                        "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})  # fmt: skip
        view = {k: v for k, v in server.items() if not k.startswith("_")}
        view["addresses"] = addresses
        on_ports = [g for p in self.ports.values() if p["device_id"] == server["id"]
                    for g in p["security_groups"]]  # fmt: skip
        view["security_groups"] = [{"name": self.security_groups[g]["name"]}
                                   for g in dict.fromkeys(on_ports) if g in self.security_groups]
        view["os-extended-volumes:volumes_attached"] = [
            {"id": v["id"]} for v in self.volumes.values() if v.get("_server") == server["id"]]
        return view

    def _advance(self, server: dict[str, Any]) -> None:
        """One poll of a server: BUILD and transitional states move on after a few."""
        server["_polls"] = server.get("_polls", 0) + 1
        status = server["status"]
        if status == "BUILD" and not self._booted(server):
            server["_polls"] -= 1  # a container still booting: BUILD it stays
        elif status == "BUILD" and server["_polls"] > self.build_polls:
            fault = server.pop("_fault", None)
            if fault:
                server |= {"status": "ERROR", "OS-EXT-STS:vm_state": "error", "fault":
                           _fill(self.errors["no_valid_host"]) | {"message": fault}}  # fmt: skip
            else:
                server |= {"status": "ACTIVE", "OS-EXT-STS:vm_state": "active"}
        elif status == "HARD_REBOOT":
            server |= {"status": "ACTIVE", "OS-EXT-STS:vm_state": "active"}
        elif status == "RESIZE":
            server |= {"status": "VERIFY_RESIZE", "OS-EXT-STS:vm_state": "resized"}

    def _nova(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if method == "GET" and path in ("/flavors", "/flavors/detail"):
            flavors = [self._flavor_view(f) for f in self.flavors.values()]
            return 200, {"flavors": flavors}
        if m := re.fullmatch(r"/flavors/([^/]+)(/os-extra_specs)?", path):
            flavor = self.flavors.get(m[1]) or self.reserved_flavors.get(m[1])
            if flavor is None:
                raise self._nova_error(404, f"Flavor {m[1]} could not be found.")
            if m[2]:
                return 200, {"extra_specs": flavor.get("extra_specs", {})}
            return 200, {"flavor": self._flavor_view(flavor)}
        if m := re.fullmatch(r"/os-quota-sets/([^/]+)/detail", path):
            return 200, {"quota_set": self._nova_quota(m[1])}
        if method == "GET" and path in ("/servers", "/servers/detail"):
            found = list(self.servers.values())
            if "name" in query:
                found = [s for s in found if re.search(query["name"], s["name"])]
            for server in found:
                self._advance(server)
            return 200, {"servers": [self._server_view(s) for s in found]}
        if method == "POST" and path == "/servers":
            return self._create_server(body)
        if path == "/os-keypairs":
            if method == "GET":
                return 200, {"keypairs": [{"keypair": k} for k in self.keypairs.values()]}
            pair = (body or {}).get("keypair") or {}
            if pair.get("name") in self.keypairs:
                raise self._nova_error(409, f"Key pair '{pair.get('name')}' already exists.")
            self.keypairs[pair["name"]] = {
                "name": pair["name"], "public_key": pair.get("public_key", ""), "type": "ssh",
                "fingerprint": "00:11:22", "user_id": "u-demo"}  # fmt: skip
            return 200, {"keypair": self.keypairs[pair["name"]]}
        if m := re.fullmatch(r"/os-keypairs/([^/]+)", path):
            if m[1] not in self.keypairs:
                raise self._nova_error(404, f"Keypair {m[1]} not found for user u-demo")
            if method == "DELETE":
                del self.keypairs[m[1]]
                return 202, None
            return 200, {"keypair": self.keypairs[m[1]]}
        m = re.fullmatch(r"/servers/([^/]+)(/action|/os-volume_attachments|/metadata)?"
                         r"(?:/([^/]+))?", path)  # fmt: skip
        if m is None:
            raise self._nova_error(404, f"{path} not found")
        if m[1] not in self.servers:
            raise self._nova_error(404, f"Instance {m[1]} could not be found.")
        server = self.servers[m[1]]
        if m[2] == "/os-volume_attachments":
            return self._volume_attachments(server, method, m[3], body)
        if m[2] == "/metadata" and m[3] is None:
            if method in ("POST", "PUT"):  # POST merges the items, PUT replaces them all
                items = {str(k): str(v) for k, v in ((body or {}).get("metadata") or {}).items()}
                server["metadata"] = (server["metadata"] if method == "POST" else {}) | items
            return 200, {"metadata": server["metadata"]}
        if m[3] is not None:
            raise self._nova_error(404, f"{path} not found")
        if method == "GET":
            self._advance(server)
            return 200, {"server": self._server_view(server)}
        if method == "DELETE":
            self._delete_server(server)
            return 204, None
        return self._server_action(server, body or {})

    def _volume_attachments(self, server: dict[str, Any], method: str, volume_id: str | None,
                            body: Any) -> tuple[int, Any]:  # fmt: skip
        """Nova's os-volume_attachments: list, attach (the volume must be available; the device
        asked for must be free) and detach. Attached volumes are `attaching`, then `in-use`."""
        attached = [(vid, device) for vid, device in server["_attachments"]
                    if self.volumes.get(vid, {}).get("_server") == server["id"]]  # fmt: skip
        if method == "GET" and volume_id is None:
            return 200, {"volumeAttachments": [
                {"id": vid, "volumeId": vid, "serverId": server["id"], "device": device}
                for vid, device in attached]}  # fmt: skip
        if method == "POST" and volume_id is None:
            state = server["OS-EXT-STS:vm_state"]
            if server["status"] not in ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"):
                raise self._nova_error(409, f"Cannot 'attach_volume' instance {server['id']} "
                                            f"while it is in vm_state {state}")  # fmt: skip
            asked = (body or {}).get("volumeAttachment") or {}
            volume = self.volumes.get(str(asked.get("volumeId")))
            if volume is None:
                raise self._nova_error(404, f"Volume {asked.get('volumeId')} could not be found.")
            if volume["status"] != "available":
                raise self._nova_error(400, f"Invalid volume: volume '{volume['id']}' status must "
                                            f"be 'available'. Currently in '{volume['status']}'")
            bdm = server["_bdm"]
            taken = {"/dev/vda", *(d for _, d in attached), *(
                d for e, d in zip(bdm, self._devices(bdm), strict=True)
                if e.get("destination_type") == "local")}  # fmt: skip
            device = asked.get("device")
            if device in taken:
                raise self._nova_error(400, f"The supplied device path ({device}) is in use.")
            device = device or next(f"/dev/vd{c}" for c in "bcdefghijklmnopqrstuvwxyz"
                                    if f"/dev/vd{c}" not in taken)  # fmt: skip
            volume |= {"status": "attaching", "_server": server["id"], "_device": device,
                       "_delete": False, "_later": True, "_polls": 0}  # fmt: skip
            server["_attachments"] = [a for a in server["_attachments"] if a[0] != volume["id"]]
            server["_attachments"].append((volume["id"], device))
            return 200, {"volumeAttachment": {"id": volume["id"], "volumeId": volume["id"],
                                              "serverId": server["id"], "device": device}}
        device = dict(attached).get(volume_id or "")
        if device is None:
            raise self._nova_error(404, f"Volume {volume_id} is not attached to {server['id']}")
        if method == "GET":
            return 200, {"volumeAttachment": {"id": volume_id, "volumeId": volume_id,
                                              "serverId": server["id"], "device": device}}
        if method == "DELETE":
            self.volumes[str(volume_id)] |= {"status": "detaching", "_polls": 0}
            return 202, None
        raise self._nova_error(409, f"Cannot {method} a volume attachment (stand-in)")

    def _microversion(self) -> tuple[int, ...]:
        """The compute microversion the request asked for (2.1 when it named none)."""
        asked = self._headers.get("OpenStack-API-Version") or ""
        version = asked.split()[-1] if asked.startswith("compute ") else \
            self._headers.get("X-OpenStack-Nova-API-Version") or "2.1"  # fmt: skip
        if version == "latest":
            version = self.compute_microversion
        return tuple(int(p) for p in version.split("."))

    def _create_image(self, server: dict[str, Any], action: dict[str, Any]) -> None:
        """Nova's createImage: a Glance snapshot whose properties are the action's metadata.
        Answers 202 with the image's Glance URL in Location, or (2.45+) {"image_id": ...}."""
        if not action.get("name"):
            raise self._nova_error(400, "Invalid input for field/attribute createImage. "
                                        "Value: {}. 'name' is a required property")  # fmt: skip
        self._image_quota("nova")
        base = server["image"]["id"] if server["image"] else ""
        image = self._new_image(action["name"], disk_format="qcow2",
            properties={**(action.get("metadata") or {}), "image_type": "snapshot",
                        "instance_uuid": server["id"], "base_image_ref": base,
                        "user_id": server["user_id"], "owner_user_name": USER})  # fmt: skip
        if self._microversion() >= (2, 45):
            raise Reply(202, {"image_id": image["id"]})
        raise Reply(202, None, {"Location": f"{self.url}/image/v2/images/{image['id']}"})

    def _nova_quota(self, project: str) -> dict[str, Any]:
        servers = [s for s in self.servers.values() if s["tenant_id"] == project
                   and not s["_hints"].get("reservation")
                   and s["flavor"]["id"] not in self.reserved_flavors]  # fmt: skip
        used = {"instances": len(servers),
                "cores": sum(self._flavor(s["flavor"]["id"])["vcpus"] for s in servers),
                "ram": sum(self._flavor(s["flavor"]["id"])["ram"] for s in servers)}  # fmt: skip
        return {"id": project} | {k: {"in_use": v, "limit": self.quota[k], "reserved": 0}
                                  for k, v in used.items()}  # fmt: skip

    def _flavor(self, flavor_id: str) -> dict[str, Any]:
        return self.flavors.get(flavor_id) or self.reserved_flavors[flavor_id]

    def _create_server(self, body: Any) -> tuple[int, Any]:
        error = server_errors(body, self._microversion())
        if error:
            raise self._nova_error(400, error)
        spec = body["server"]
        hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
        flavor_id = str(spec.get("flavorRef", "")).rsplit("/", 1)[-1]
        flavor = self.flavors.get(flavor_id) or self.reserved_flavors.get(flavor_id)
        if flavor is None or flavor.get("OS-FLV-DISABLED:disabled"):
            raise self._nova_error(400, f"Flavor {flavor_id} could not be found.")
        bdm = spec.get("block_device_mapping_v2") or []
        image = spec.get("imageRef") or ""
        if image and self.images.get(image, {}).get("status") != "active":
            raise self._nova_error(400, f"Image {image} could not be found.")
        if not image and not any(b.get("boot_index") in (0, "0") for b in bdm):
            raise self._nova_error(400, "Block Device Mapping is Invalid: no boot device")
        project = self.project["id"]
        usage = self._nova_quota(project)
        # what a lease reserved was paid for by the lease: no ordinary quota check
        leased = bool(hints.get("reservation")) or flavor_id in self.reserved_flavors
        for key, asked in () if leased else (("instances", 1), ("cores", flavor["vcpus"]),
                                             ("ram", flavor["ram"])):  # fmt: skip
            if usage[key]["in_use"] + asked > self.quota[key]:
                used = usage[key]["in_use"]
                raise Reply(403, _fill(self.errors["nova_quota"], what=key, req=asked,
                                       used=used, limit=self.quota[key]))  # fmt: skip
        groups = []
        for group in spec.get("security_groups") or [{"name": "default"}]:
            found = [g for g in self.security_groups.values()
                     if group["name"] in (g["name"], g["id"])]  # fmt: skip
            if not found and group["name"] != "default":
                raise self._nova_error(400, f"Security group {group['name']} not found.")
            groups += found
        nets = spec.get("networks") or []
        if not nets or nets == "auto":
            raise self._nova_error(400, "Networks must be given (stand-in)")
        for net in nets:
            if net.get("uuid") not in self.networks:
                raise self._nova_error(400, f"Network {net.get('uuid')} could not be found.")
        server_id = str(uuid.uuid4())
        fault = self.fault
        reservation = hints.get("reservation")
        if reservation and not self._reservation_active(reservation):
            fault = self.errors["no_valid_host"]["message"]
        attachments = []  # (volume id, device) in mapping order, as Nova lists them
        for entry, device in zip(bdm, self._devices(bdm), strict=True):
            volume_id = self._map_volume(server_id, entry, device)
            if volume_id:
                attachments.append((volume_id, device))
        for net in nets:
            self._add_port(net["uuid"], server_id, "compute:nova", [g["id"] for g in groups])
        server = {
            "id": server_id, "name": spec["name"], "status": "BUILD", "tenant_id": project,
            "user_id": "u-demo", "metadata": spec.get("metadata") or {},
            "flavor": {"id": flavor["id"], "links": []},
            "image": {"id": image, "links": []} if image else "",
            "OS-EXT-STS:vm_state": "building", "OS-EXT-STS:task_state": None,
            "OS-EXT-STS:power_state": 0, "OS-EXT-AZ:availability_zone":
                spec.get("availability_zone") or "nova",
            "security_groups": [{"name": g["name"]} for g in groups],
            "key_name": spec.get("key_name"), "hostId": "", "accessIPv4": "", "accessIPv6": "",
            "created": "2024-01-01T00:00:00Z", "updated": "2024-01-01T00:00:00Z",
            "config_drive": "", "progress": 0,
            "links": [{"rel": "self", "href": f"{self.url}/compute/v2.1/servers/{server_id}"}],
            "_user_data": spec.get("user_data"), "_hints": hints, "_bdm": bdm, "_fault": fault,
            "_attachments": attachments,
        }  # fmt: skip
        self.servers[server_id] = server
        self._boot_server(server)
        return 202, {"server": {"id": server_id, "links": server["links"],
                                "OS-DCF:diskConfig": "MANUAL", "adminPass": "x",
                                "security_groups": server["security_groups"]}}  # fmt: skip

    @staticmethod
    def _devices(bdm: list[dict[str, Any]]) -> list[str]:
        """Nova's device names: the boot disk vda, the others as asked or the next free."""
        taken = {"/dev/vda"} | {e["device_name"] for e in bdm if e.get("device_name")}
        free = (f"/dev/vd{c}" for c in "bcdefghijklmnopqrstuvwxyz" if f"/dev/vd{c}" not in taken)
        return ["/dev/vda" if e.get("boot_index") in (0, "0") else e.get("device_name")
                or next(free) for e in bdm]  # fmt: skip

    def _map_volume(self, server_id: str, entry: dict[str, Any], device: str) -> str | None:
        """The volume a mapping entry attaches (made for it if blank or from an image)."""
        if entry.get("source_type") == "volume":
            volume = self.volumes.get(entry.get("uuid", ""))
            if volume is None or volume["status"] != "available":
                raise self._nova_error(400, f"Volume {entry.get('uuid')} could not be found.")
            volume |= {"status": "in-use", "_server": server_id, "_delete": False,
                       "_device": device}  # fmt: skip
            return str(volume["id"])
        if entry.get("destination_type") == "volume":
            volume_id = str(uuid.uuid4())
            self.volumes[volume_id] = {"id": volume_id, "status": "in-use",
                "size": entry.get("volume_size"), "volume_type": entry.get("volume_type"),
                "name": "", "_server": server_id, "_delete": entry.get("delete_on_termination"),
                "_device": device, "orbis": True}  # fmt: skip
            return volume_id
        return None  # a local (ephemeral) disk: no volume

    def _delete_server(self, server: dict[str, Any]) -> None:
        del self.servers[server["id"]]
        for port in [p for p in self.ports.values() if p["device_id"] == server["id"]]:
            for fip in self.floatingips.values():
                if fip["port_id"] == port["id"]:
                    fip |= {"port_id": None, "fixed_ip_address": None, "status": "DOWN"}
            del self.ports[port["id"]]
        gone = []
        for volume in [v for v in self.volumes.values() if v.get("_server") == server["id"]]:
            if volume.get("_delete"):
                del self.volumes[volume["id"]]
                gone.append(volume["id"])
            elif volume.get("_later"):  # attached through the API: detached over a poll or two
                volume |= {"status": "detaching", "_polls": 0}
            else:
                volume |= {"status": "available", "_server": None}
        self._unboot(server["id"], gone)

    def _server_action(self, server: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        action = next(iter(body), "")
        status = server["status"]
        if action == "os-stop" and status == "ACTIVE":
            server |= {"status": "SHUTOFF", "OS-EXT-STS:vm_state": "stopped"}
        elif action == "os-start" and status == "SHUTOFF":
            server |= {"status": "ACTIVE", "OS-EXT-STS:vm_state": "active"}
        elif action == "reboot":
            server |= {"status": "HARD_REBOOT" if body["reboot"]["type"] == "HARD" else "REBOOT"}
        elif action == "resize" and status in ("ACTIVE", "SHUTOFF"):
            flavor_id = str(body["resize"]["flavorRef"])
            if flavor_id not in self.flavors:
                raise self._nova_error(400, f"Flavor {flavor_id} could not be found.")
            server |= {"status": "RESIZE", "_new_flavor": flavor_id}
        elif action == "confirmResize" and status == "VERIFY_RESIZE":
            server |= {"status": "ACTIVE", "OS-EXT-STS:vm_state": "active",
                       "flavor": {"id": server.pop("_new_flavor"), "links": []}}  # fmt: skip
        elif action == "createImage" and status in ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"):
            self._create_image(server, body["createImage"] or {})
        elif action in ("addSecurityGroup", "removeSecurityGroup"):
            name = body[action]["name"]
            group = next((g for g in self.security_groups.values() if g["name"] == name), None)
            if group is None:
                raise self._nova_error(404, f"Security group {name} not found")
            for port in self.ports.values():
                if port["device_id"] == server["id"]:
                    ids = [i for i in port["security_groups"] if i != group["id"]]
                    port["security_groups"] = ids + ([group["id"]] if action[0] == "a" else [])
            server["security_groups"] = [{"name": g["name"]} for g in self.security_groups.values()
                if any(g["id"] in p["security_groups"] for p in self.ports.values()
                       if p["device_id"] == server["id"])]  # fmt: skip
        else:
            state = server["OS-EXT-STS:vm_state"]
            raise self._nova_error(409, f"Cannot '{action}' instance {server['id']} while it "
                                        f"is in vm_state {state}")  # fmt: skip
        return 202, None

