"""Blazar: leases of physical hosts and virtual instances (a reserved flavor each)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from orbis.testing.standins.openstack.common import (
    TRANSITIONAL,
    Reply,
    _fill,
    _fixture,
)
from orbis.testing.standins.openstack.identity import Identity


class Reservation(Identity):
    def _blazar_error(self, status: int, name: str, message: str) -> Reply:
        body = _fill(self.errors["blazar"], message=message, name=name)
        return Reply(status, body | {"error_code": status})

    def _reservation_active(self, reservation_id: str) -> bool:
        return any(r["id"] == reservation_id and r["status"] == "active"
                   and r["resource_type"] == "physical:host"
                   for le in self.leases.values() for r in le["reservations"])  # fmt: skip

    def _blazar(self, method: str, path: str, query: dict[str, str], body: Any
                ) -> tuple[int, Any]:  # fmt: skip
        if path == "/leases" and method == "GET":
            return 200, {"leases": [{k: v for k, v in le.items() if not k.startswith("_")}
                                    for le in self.leases.values()]}
        if path == "/leases" and method == "POST":
            return 201, {"lease": self._create_lease(body)}
        m = re.fullmatch(r"/leases/([^/]+)", path)
        lease = self.leases.get(m[1]) if m else None
        if lease is None:
            raise self._blazar_error(404, "NotFound", f"Object with {{'lease_id': '{path}'}} "
                                                      "not found")  # fmt: skip
        if method == "GET":
            self._advance_lease(lease)
            return 200, {"lease": {k: v for k, v in lease.items() if not k.startswith("_")}}
        if method == "DELETE":
            if lease["status"] in TRANSITIONAL or self.lease_delete_conflicts > 0:
                self.lease_delete_conflicts -= 1
                raise self._blazar_error(409, "InvalidStatus",
                    f"Lease {lease['id']} is in transitional state {lease['status']}")  # fmt: skip
            for reservation in lease["reservations"]:
                self.reserved_flavors.pop(reservation["id"], None)
            del self.leases[lease["id"]]
            return 204, None
        raise self._blazar_error(405, "MethodNotAllowed", method)

    def _create_lease(self, body: dict[str, Any]) -> dict[str, Any]:
        for key in ("start_date", "end_date"):
            value = body.get(key, "")
            if value != "now" and not re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", value):
                raise self._blazar_error(400, "InvalidDate",
                                         f"{key} {value!r} is not YYYY-MM-DD HH:MM")  # fmt: skip
        template = _fixture("blazar_lease")
        lease = template["lease"] | {"id": str(uuid.uuid4()), "name": body["name"],
            "start_date": body["start_date"], "end_date": body["end_date"],
            "project_id": self.project["id"], "events": body.get("events", []),
            "_polls": 0}  # fmt: skip
        busy = sum(int(r.get("max", 0)) for le in self.leases.values()
                   for r in le["reservations"] if r["resource_type"] == "physical:host")
        for asked in body.get("reservations", []):
            reservation = dict(template["reservation"]) | asked
            reservation |= {"id": str(uuid.uuid4()), "lease_id": lease["id"]}
            if asked["resource_type"] == "physical:host":
                wanted = re.findall(r'"\$node_type",\s*"([^"]+)"', asked.get("resource_properties")
                                    or "")  # fmt: skip
                hosts = [h for h in self.hosts if not wanted or h["node_type"] in wanted]
                if not 1 <= int(asked["min"]) <= int(asked["max"]):
                    raise self._blazar_error(400, "InvalidRange", "min/max out of range")
                if int(asked["min"]) > len(hosts) - busy:
                    raise self._blazar_error(409, "NotEnoughHostsAvailable",
                                             "Not enough hosts available")  # fmt: skip
            elif asked["resource_type"] == "virtual:instance":
                reservation |= {"flavor_id": reservation["id"], "server_group_id": None}
                self.reserved_flavors[reservation["id"]] = {
                    "id": reservation["id"], "name": f"reservation:{reservation['id']}",
                    "vcpus": asked["vcpus"], "ram": asked["memory_mb"], "disk": asked["disk_gb"],
                    "extra_specs": {"aggregate_instance_extra_specs:reservation":
                                    reservation["id"]}}  # fmt: skip
            else:
                raise self._blazar_error(400, "UnsupportedResourceType", asked["resource_type"])
            lease["reservations"].append(reservation)
        self.leases[lease["id"]] = lease
        return {k: v for k, v in lease.items() if not k.startswith("_")}

    def _advance_lease(self, lease: dict[str, Any]) -> None:
        lease["_polls"] += 1
        if lease["status"] == "PENDING" and lease["start_date"] == "now":
            lease["status"] = "STARTING"
        elif lease["status"] == "STARTING" and lease["_polls"] > self.lease_polls:
            lease["status"] = "ACTIVE"
            for reservation in lease["reservations"]:
                reservation["status"] = "active"
                reservation["missing_resources"] = self.lease_degraded
            lease["degraded"] = self.lease_degraded
