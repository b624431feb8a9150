"""Chameleon reservations: Blazar leases over the provider's keystoneauth session.

Blazar is a plain REST API (catalog service type `reservation`), so a few calls on the session
the OpenStack provider already holds do the job; python-blazarclient would add a dependency for
four requests. An infrastructure gets one lease, `orbis-<infid>`, sized to the first node that
needs it (`compute.count` hosts or instances): nodes of other templates launched later share it,
which only works when they fit its hosts (physical:host) or its flavor (virtual:instance).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1.session import Session

from orbis.placement.fit import MB
from orbis.providers.base import (
    NotFound,
    ProviderAuthError,
    ProviderError,
    QuotaExceeded,
    Transient,
)

log = logging.getLogger(__name__)

HOST, INSTANCE = "physical:host", "virtual:instance"
KINDS = {"host": HOST, "physical:host": HOST, "instance": INSTANCE, "virtual:instance": INSTANCE}
FAILED = {"ERROR", "TERMINATED", "DELETING"}
TRANSITIONAL = {"CREATING", "STARTING", "UPDATING", "TERMINATING"}
DATE_FORMAT = "%Y-%m-%d %H:%M"  # Blazar wants UTC minutes, no seconds or zone


def lease_name(infrastructure_id: str) -> str:
    return f"orbis-{infrastructure_id}"


@dataclass(frozen=True)
class ReservationSettings:
    """What the auth line (or the provider options) asks for: `reservation = host|instance`,
    `lease_hours` (default 24), `node_type` (Chameleon's $node_type, hosts only),
    `reservation_flavor` (the bare-metal flavor, default `baremetal` when the site has it)."""

    kind: str
    lease_hours: float = 24.0
    node_type: str | None = None
    flavor: str = "baremetal"

    @classmethod
    def read(cls, *sources: Mapping[str, Any]) -> ReservationSettings | None:
        merged: dict[str, Any] = {}
        for source in sources:  # later sources (options) override earlier ones (auth line)
            merged |= {k: v for k, v in source.items() if v not in (None, "")}
        wanted = str(merged.get("reservation", "")).strip().lower()
        if not wanted or wanted in ("no", "none", "false"):
            return None
        if wanted not in KINDS:
            raise ProviderError(f"reservation = {wanted}: use 'host' or 'instance'")
        return cls(
            kind=KINDS[wanted],
            lease_hours=float(merged.get("lease_hours") or 24),
            node_type=merged.get("node_type") or None,
            flavor=str(merged.get("reservation_flavor") or "baremetal"),
        )

    def reservation(self, count: int, num_cpus: float | None, mem_size: int | None,
                    disk_gb: int | None) -> dict[str, Any]:  # fmt: skip
        """The `reservations[]` entry for `count` nodes."""
        properties = f'["==", "$node_type", "{self.node_type}"]' if self.node_type else ""
        if self.kind == HOST:
            return {"resource_type": HOST, "min": count, "max": count,
                    "hypervisor_properties": "", "resource_properties": properties}  # fmt: skip
        return {"resource_type": INSTANCE, "amount": count,
                "vcpus": math.ceil(num_cpus or 1), "memory_mb": (mem_size or 1024 * MB) // MB,
                "disk_gb": disk_gb or 10, "affinity": None,
                "resource_properties": ""}  # fmt: skip


@dataclass(frozen=True)
class Lease:
    id: str
    reservation_id: str
    kind: str
    flavor_id: str | None = None  # virtual:instance: Blazar's private flavor
    server_group_id: str | None = None
    warnings: tuple[str, ...] = ()

    def scheduler_hints(self) -> dict[str, str]:
        if self.kind == HOST:
            return {"reservation": self.reservation_id}  # the reservation id, not the lease's
        return {"group": self.server_group_id} if self.server_group_id else {}


def lease_dates(hours: float, now: datetime | None = None) -> tuple[str, str]:
    """(start, end) as Blazar wants them: start now, end `hours` later, UTC minutes."""
    now = now or datetime.now(UTC)
    return "now", (now + timedelta(hours=hours)).strftime(DATE_FORMAT)


class Blazar:
    """The few lease calls Orbis needs, with Blazar's errors made typed."""

    def __init__(self, session: Session, *, site: str, region: str | None = None,
                 poll_interval: float = 10.0, timeout: float = 900.0) -> None:  # fmt: skip
        self.session, self.site, self.region = session, site, region
        self.poll_interval, self.timeout = poll_interval, timeout

    def available(self) -> bool:
        """Whether the site's catalog lists a reservation service at all."""
        try:
            return bool(self.session.get_endpoint(**self._filter()))
        except ks_exc.EndpointNotFound:
            return False

    def ensure(self, name: str, settings: ReservationSettings, entry: dict[str, Any]) -> Lease:
        """The lease called `name`, created with `entry` if missing, once ACTIVE."""
        lease = self.find(name)
        if lease is None:
            start, end = lease_dates(settings.lease_hours)
            body = {"name": name, "start_date": start, "end_date": end,
                    "reservations": [entry], "events": []}  # fmt: skip
            lease = self._call("POST", "/leases", body, what=f"create lease {name}")["lease"]
        lease = self.wait_active(lease["id"])
        reservation = next((r for r in lease.get("reservations", [])
                            if r.get("resource_type") == settings.kind), None)  # fmt: skip
        if reservation is None:
            raise ProviderError(f"{self.site}: lease {name} holds no {settings.kind} reservation")
        warnings = []
        if lease.get("degraded") or reservation.get("missing_resources"):
            warnings.append(f"lease {name} is degraded: some reserved resources are missing")
            log.warning("%s: %s", self.site, warnings[-1])
        return Lease(id=lease["id"], reservation_id=reservation["id"], kind=settings.kind,
                     flavor_id=reservation.get("flavor_id"),
                     server_group_id=reservation.get("server_group_id"),
                     warnings=tuple(warnings))  # fmt: skip

    def find(self, name: str) -> dict[str, Any] | None:
        leases = self._call("GET", "/leases", what="list leases").get("leases", [])
        return next((le for le in leases if le.get("name") == name), None)

    def wait_active(self, lease_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            lease: dict[str, Any] = self._call("GET", f"/leases/{lease_id}",
                                               what=f"lease {lease_id}")["lease"]  # fmt: skip
            status = str(lease.get("status", "")).upper()
            if status == "ACTIVE":
                return lease
            if status in FAILED:
                raise ProviderError(f"{self.site}: lease {lease.get('name')} is {status}")
            if time.monotonic() > deadline:
                raise Transient(f"{self.site}: lease {lease.get('name')} still {status} after "
                                f"{self.timeout:g} s")  # fmt: skip
            time.sleep(self.poll_interval)

    def delete(self, name: str) -> None:
        """Delete the lease called `name`; retried while Blazar says it is transitional (409)."""
        lease = self.find(name)
        if lease is None:
            return
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self._call("DELETE", f"/leases/{lease['id']}", what=f"delete lease {name}")
                return
            except NotFound:
                return
            except _Conflict:
                if time.monotonic() > deadline:
                    raise Transient(f"{self.site}: lease {name} stays in a transitional "
                                    "state; delete it later") from None  # fmt: skip
                time.sleep(self.poll_interval)

    # -- plumbing -----------------------------------------------------------------------------

    def _filter(self) -> dict[str, Any]:
        return {"service_type": "reservation", "interface": "public", "region_name": self.region}

    def _call(self, method: str, path: str, body: Any = None, *, what: str) -> dict[str, Any]:
        try:
            response = self.session.request(path, method, json=body, raise_exc=False,
                                            endpoint_filter=self._filter())  # fmt: skip
        except ks_exc.EndpointNotFound:
            raise ProviderError(f"{self.site}: no reservation (Blazar) service in the "
                                "catalog") from None  # fmt: skip
        except (ks_exc.ConnectFailure, ks_exc.ConnectTimeout, ks_exc.RequestTimeout) as err:
            raise Transient(f"{self.site}: {what}: {type(err).__name__}") from None
        except ks_exc.Unauthorized:
            raise ProviderAuthError(f"{self.site}: credentials refused") from None
        status = response.status_code
        if status < 400:
            return response.json() if response.content else {}
        try:
            message = response.json().get("error_message") or response.text
        except ValueError:
            message = response.text
        message = f"{self.site}: {what}: {message}"
        if status == 409 and method == "POST":
            raise QuotaExceeded(message)  # "not enough hosts available": no blind retry
        if status == 409:
            raise _Conflict(message)
        if status == 401:
            raise ProviderAuthError(message)
        if status == 404:
            raise NotFound(message)
        if status == 429 or status >= 500:
            raise Transient(message)
        raise ProviderError(message)


class _Conflict(ProviderError):
    """A 409 outside creation: the lease is transitional."""
