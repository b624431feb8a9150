"""Chameleon reservations: Blazar leases through the OpenStack provider, against the stand-in."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from orbis.model.infrastructure import Compute
from orbis.placement.fit import GB
from orbis.providers.base import NodeSpec, ProviderError, QuotaExceeded
from orbis.providers.blazar import Blazar, ReservationSettings, lease_dates
from orbis.providers.openstack import OpenStackProvider
from orbis.testing.standins.openstack import OpenStackStandin

UBUNTU = "6e1f2a3b-0000-4000-8000-000000000001"


def spec(infra: str = "inf-1", vm_id: int = 0, count: int = 1, **compute: Any) -> NodeSpec:
    node = Compute(name="node", type="tosca.nodes.indigo.Compute", image=UBUNTU, count=count,
                   **({"num_cpus": 2, "mem_size": 2 * GB} | compute))  # fmt: skip
    return NodeSpec(infrastructure_id=infra, vm_id=vm_id, name="node", image=UBUNTU,
                    ssh_public_key="ssh-ed25519 AAAA test", compute=node)  # fmt: skip


def provider(cloud: OpenStackStandin, **auth: str) -> OpenStackProvider:
    return OpenStackProvider(cloud.auth_line("3.x_appcred", **auth), options=cloud.fast_options)


def posted(cloud: OpenStackStandin, suffix: str) -> list[Any]:
    return [b for m, p, b, s in cloud.requests if m == "POST" and p.endswith(suffix) and s < 300]


def test_settings_from_auth_line_and_options() -> None:
    assert ReservationSettings.read({"reservation": ""}) is None
    host = ReservationSettings.read({"reservation": "host", "node_type": "compute_skylake",
                                     "lease_hours": "2"})  # fmt: skip
    assert host is not None and (host.kind, host.lease_hours) == ("physical:host", 2.0)
    entry = host.reservation(3, None, None, None)
    assert entry == {"resource_type": "physical:host", "min": 3, "max": 3,
                     "hypervisor_properties": "",
                     "resource_properties": '["==", "$node_type", "compute_skylake"]'}
    assert json.loads(entry["resource_properties"]) == ["==", "$node_type", "compute_skylake"]
    instance = ReservationSettings.read({"reservation": "host"}, {"reservation": "instance"})
    assert instance is not None and instance.reservation(2, 1.5, 3 * GB, None) == {
        "resource_type": "virtual:instance", "amount": 2, "vcpus": 2, "memory_mb": 3072,
        "disk_gb": 10, "affinity": None, "resource_properties": ""}  # fmt: skip
    with pytest.raises(ProviderError, match="use 'host' or 'instance'"):
        ReservationSettings.read({"reservation": "network"})


def test_lease_dates_are_utc_minutes() -> None:
    start, end = lease_dates(24, datetime(2026, 3, 1, 23, 30, 59, tzinfo=UTC))
    assert (start, end) == ("now", "2026-03-02 23:30")


def test_host_reservation_launches_with_the_reservation_hint() -> None:
    with OpenStackStandin(lease_polls=2) as cloud:
        p = provider(cloud, reservation="host", node_type="compute_skylake", lease_hours="6")
        machine = p.launch(spec(count=2))
        (lease,) = cloud.leases.values()
        (body,) = posted(cloud, "/reservation/v1/leases")
        assert body["name"] == "orbis-inf-1" and body["start_date"] == "now"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", body["end_date"])
        assert body["reservations"][0]["min"] == body["reservations"][0]["max"] == 2
        assert lease["status"] == "ACTIVE"  # polled until then
        polls = [p for m, p, _, _ in cloud.requests if m == "GET" and p.endswith(lease["id"])]
        assert len(polls) >= 3
        (server,) = cloud.servers.values()
        reservation = lease["reservations"][0]["id"]
        assert server["_hints"] == {"reservation": reservation} and reservation != lease["id"]
        assert cloud.flavors[server["flavor"]["id"]]["name"] == "baremetal"
        assert machine.state.value == "running"
        # a second node of the same infrastructure shares the lease
        p.launch(spec(vm_id=1, count=2))
        assert len(cloud.leases) == 1 and len(posted(cloud, "/reservation/v1/leases")) == 1


def test_instance_reservation_uses_the_reserved_flavor() -> None:
    with OpenStackStandin() as cloud:
        p = provider(cloud, reservation="instance")
        p.launch(spec(num_cpus=2, mem_size=4 * GB))
        (lease,) = cloud.leases.values()
        reservation = lease["reservations"][0]
        assert reservation["resource_type"] == "virtual:instance"
        assert (reservation["vcpus"], reservation["memory_mb"]) == (2, 4096)
        (server,) = cloud.servers.values()
        assert server["flavor"]["id"] == reservation["flavor_id"]  # no flavor matching
        assert server["_hints"] == {}


def test_not_enough_hosts_is_quota_exceeded_and_not_retried() -> None:
    with OpenStackStandin() as cloud:
        p = provider(cloud, reservation="host", node_type="gpu_v100")
        with pytest.raises(QuotaExceeded, match="Not enough hosts available"):
            p.launch(spec(count=2))  # the site has one gpu_v100 host
        assert not cloud.leases and not cloud.servers
        assert len([r for r in cloud.requests if r[1] == "/reservation/v1/leases"
                    and r[0] == "POST"]) == 1  # fmt: skip


def test_degraded_lease_is_a_warning() -> None:
    with OpenStackStandin(lease_degraded=True) as cloud:
        machine = provider(cloud, reservation="host").launch(spec())
        assert any("degraded" in w for w in machine.warnings)


@pytest.mark.parametrize("status", ["ERROR", "TERMINATED", "DELETING"])
def test_waiting_fails_on_a_dead_lease(status: str) -> None:
    with OpenStackStandin() as cloud:
        p = provider(cloud, reservation="host")
        blazar = Blazar(p.conn.session, site="standin", poll_interval=0.01, timeout=5)
        settings = ReservationSettings.read({"reservation": "host"})
        assert settings is not None
        lease = cloud._create_lease({"name": "x", "start_date": "now", "end_date": "now",
                                     "reservations": [settings.reservation(1, 1, GB, 10)]})
        cloud.leases[lease["id"]]["status"] = status
        with pytest.raises(ProviderError, match=f"lease x is {status}"):
            blazar.wait_active(lease["id"])


def test_cleanup_deletes_the_lease_retrying_conflicts() -> None:
    with OpenStackStandin(lease_delete_conflicts=2) as cloud:
        p = provider(cloud, reservation="host")
        p.launch(spec())
        p.cleanup("inf-1")
        assert not cloud.leases and not cloud.servers
        deletes = [s for m, path, _, s in cloud.requests
                   if m == "DELETE" and path.startswith("/reservation/v1/leases/")]
        assert deletes == [409, 409, 204]
        # servers go before the lease
        order = [path for m, path, _, _ in cloud.requests if m == "DELETE"]
        assert order.index(next(x for x in order if "/servers/" in x)) < order.index(
            next(x for x in order if "/leases/" in x))


def test_cleanup_without_reservations_still_removes_an_orbis_lease() -> None:
    with OpenStackStandin() as cloud:
        provider(cloud, reservation="host").launch(spec())
        provider(cloud).cleanup("inf-1")  # a provider without reservation settings
        assert not cloud.leases
