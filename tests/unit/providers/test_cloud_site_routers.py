"""The overlay's site routers on clouds (issue 13): `route_through` against the strict OpenStack
stand-in and moto's EC2 server over real HTTP (the calls happen, the cloud's state is right,
re-applying changes nothing, destroying the router takes its routes), the engine's choice of
routers and CIDRs (engine/overlay_routes), and the stand-in refusing what Neutron refuses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import openstack.exceptions as os_exc
import pytest

from orbis.engine.overlay_routes import route_sites, routes_on_cloud, site_routes
from orbis.model.infrastructure import Compute
from orbis.overlay.model import CentralPoint, Member, Overlay
from orbis.overlay.state import OverlayState
from orbis.placement.fit import GB
from orbis.providers.base import NodeSpec, NotFound, ProviderError
from orbis.providers.ec2 import EC2Provider
from orbis.providers.openstack import OpenStackProvider
from orbis.providers.sim import SimProvider
from orbis.store.schema import NodeRow
from orbis.testing.standins.openstack import OpenStackStandin

from .ec2_common import AUTH, FAST, REGION, make_provider, raw

UBUNTU = "6e1f2a3b-0000-4000-8000-000000000001"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOrbisTestKey orbis@test"
SITE_B, POOL, BACKUP_POOL = "10.1.0.0/24", "192.168.255.0/24", "192.168.254.0/24"


@pytest.fixture
def cloud() -> Iterator[OpenStackStandin]:
    with OpenStackStandin() as standin:
        yield standin


def openstack(cloud: OpenStackStandin) -> OpenStackProvider:
    return OpenStackProvider(cloud.auth_line(), options=cloud.fast_options)


def os_spec(name: str, vm_id: int, *, public: bool = False, infra: str = "inf-1") -> NodeSpec:
    node = Compute(name=name, type="tosca.nodes.indigo.Compute", image=UBUNTU, public=public,
                   num_cpus=1, mem_size=1 * GB)  # fmt: skip
    return NodeSpec(infrastructure_id=infra, vm_id=vm_id, name=name, image=UBUNTU,
                    public=public, ssh_public_key=KEY, compute=node)  # fmt: skip


def private_port(cloud: OpenStackStandin, server_id: str) -> dict[str, Any]:
    (port,) = [p for p in cloud.ports.values() if p["device_id"] == server_id
               and not cloud.networks[p["network_id"]].get("router:external")]  # fmt: skip
    return port


def subnet_of(cloud: OpenStackStandin, port: dict[str, Any]) -> dict[str, Any]:
    return cloud.subnets[port["fixed_ips"][0]["subnet_id"]]


def subnet_updates(cloud: OpenStackStandin) -> int:
    return sum(1 for method, path, _body, status in cloud.requests
               if method == "PUT" and "/subnets/" in path and status < 300)  # fmt: skip


# -- OpenStack: port security off, subnet host routes ------------------------------------------


def test_openstack_site_router_forwards_and_its_subnet_routes_the_other_sites(
        cloud: OpenStackStandin) -> None:  # fmt: skip
    p = openstack(cloud)
    router = p.launch(os_spec("front", 0, public=True))
    worker = p.launch(os_spec("worker", 1))
    port = private_port(cloud, router.provider_id)
    assert port["port_security_enabled"] is True and port["security_groups"]  # as launched
    subnet = subnet_of(cloud, port)
    subnet["host_routes"].append({"destination": "172.30.0.0/16", "nexthop": worker.private_ip})
    assert p.route_through(router.provider_id, [SITE_B, POOL]) == ()
    port = private_port(cloud, router.provider_id)
    assert port["port_security_enabled"] is False and port["security_groups"] == []
    assert subnet["host_routes"] == [
        {"destination": "172.30.0.0/16", "nexthop": worker.private_ip},  # not ours: kept
        {"destination": SITE_B, "nexthop": router.private_ip},
        {"destination": POOL, "nexthop": router.private_ip}]
    # the site's other nodes keep port security and their groups
    other = private_port(cloud, worker.provider_id)
    assert other["port_security_enabled"] is True and other["security_groups"]
    # what other sites send them gets past their group: the routed private ranges admitted
    (group,) = [cloud.security_groups[g] for g in other["security_groups"]]
    assert admitted(group) == [SITE_B, POOL]
    # re-applied (each configure run): nothing changes, not even a subnet update
    before = subnet_updates(cloud)
    assert p.route_through(router.provider_id, [SITE_B, POOL]) == ()
    assert subnet_updates(cloud) == before and len(subnet["host_routes"]) == 3
    assert admitted(group) == [SITE_B, POOL]  # no rule twice
    p.route_through(router.provider_id, ["198.51.100.0/24"])  # a public range: routed only
    assert admitted(group) == [SITE_B, POOL] and len(subnet["host_routes"]) == 4
    # a CIDR overlapping the router's own subnet is skipped, with a warning saying why
    (warning,) = p.route_through(router.provider_id, [subnet["cidr"]])
    assert "overlaps its subnet" in warning and len(subnet["host_routes"]) == 4
    # a site gone: its route through this router dropped; one to it through another address
    # (not this router's) and the others kept
    subnet["host_routes"].append({"destination": "10.2.0.0/24", "nexthop": worker.private_ip})
    p.route_through(router.provider_id, [POOL], drop=[SITE_B, "198.51.100.0/24", "10.2.0.0/24"])
    assert subnet["host_routes"] == [
        {"destination": "172.30.0.0/16", "nexthop": worker.private_ip},
        {"destination": POOL, "nexthop": router.private_ip},
        {"destination": "10.2.0.0/24", "nexthop": worker.private_ip}]
    del subnet["host_routes"][2]
    # the router goes: its routes go with it, the others' stay
    p.destroy(router.provider_id)
    assert subnet["host_routes"] == [
        {"destination": "172.30.0.0/16", "nexthop": worker.private_ip}]


def admitted(group: dict[str, Any]) -> list[str]:
    """CIDRs a security group takes any traffic from."""
    return [r["remote_ip_prefix"] for r in group["security_group_rules"]
            if r["direction"] == "ingress" and r.get("protocol") is None
            and r.get("remote_ip_prefix")]  # fmt: skip


def test_openstack_router_made_anew_takes_over_the_routes(cloud: OpenStackStandin) -> None:
    p = openstack(cloud)
    first = p.launch(os_spec("front", 0, public=True))
    p.route_through(first.provider_id, [SITE_B])
    second = p.launch(os_spec("front", 2, public=True))
    p.route_through(second.provider_id, [SITE_B])
    subnet = subnet_of(cloud, private_port(cloud, second.provider_id))
    assert subnet["host_routes"] == [{"destination": SITE_B, "nexthop": second.private_ip}]
    p.destroy(first.provider_id)  # the old one going takes nothing of the new one's
    assert subnet["host_routes"] == [{"destination": SITE_B, "nexthop": second.private_ip}]


def test_openstack_refusals_are_errors_of_the_node(cloud: OpenStackStandin) -> None:
    p = openstack(cloud)
    router = p.launch(os_spec("front", 0, public=True))
    many = [f"10.{n}.0.0/24" for n in range(100, 121)]  # 21: Neutron's limit is 20
    with pytest.raises(ProviderError, match="exceeds the limit 20"):
        p.route_through(router.provider_id, many)
    assert subnet_of(cloud, private_port(cloud, router.provider_id))["host_routes"] == []
    p.destroy(router.provider_id)
    with pytest.raises(NotFound):
        p.route_through(router.provider_id, [SITE_B])


# -- the OpenStack stand-in refuses what Neutron refuses ---------------------------------------


@pytest.mark.parametrize(("routes", "refusal"), [
    ([{"destination": "10.1.0.5/24", "nexthop": "10.0.0.10"}], "'10.1.0.5/24' is not a valid CIDR"),
    ([{"destination": "10.1.0.0", "nexthop": "10.0.0.10"}], "'10.1.0.0' is not a valid CIDR"),
    ([{"destination": "127.0.0.0/8", "nexthop": "10.0.0.10"}], "is not a routable CIDR"),
    ([{"destination": "10.1.0.0/24", "nexthop": "10.0.0.010"}], "is not an accepted IP address"),
    ([{"destination": "10.1.0.0/24", "nexthop": "10.0.0.10", "metric": 1}],
     "Validation of dictionary's keys failed"),
    ([{"destination": "10.1.0.0/24", "nexthop": "10.0.0.10"}] * 2, "Duplicate hostroute"),
    ([{"destination": "fd00::/64", "nexthop": "10.0.0.10"}], "does not match the ip_version"),
    ([{"destination": f"10.{n}.0.0/24", "nexthop": "10.0.0.10"} for n in range(21)],
     "The number of host routes exceeds the limit 20"),
])  # fmt: skip
def test_standin_refuses_host_routes_neutron_refuses(cloud: OpenStackStandin,
                                                     routes: list[Any], refusal: str) -> None:
    conn = openstack(cloud).conn
    net = conn.network.create_network(name="lan")
    subnet = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.0.0.0/24")
    with pytest.raises(os_exc.BadRequestException, match=refusal):
        conn.network.update_subnet(subnet, host_routes=routes)
    assert cloud.subnets[subnet.id]["host_routes"] == []
    ok = [{"destination": "10.1.0.0/24", "nexthop": "10.0.0.10"}]
    assert conn.network.update_subnet(subnet, host_routes=ok).host_routes == ok


def test_standin_refuses_port_security_off_while_groups_are_attached(
        cloud: OpenStackStandin) -> None:  # fmt: skip
    p = openstack(cloud)
    router = p.launch(os_spec("front", 0, public=True))
    conn, port_id = p.conn, private_port(cloud, router.provider_id)["id"]
    with pytest.raises(os_exc.ConflictException, match="Port has security group associated"):
        conn.network.update_port(port_id, is_port_security_enabled=False)
    conn.network.update_port(port_id, is_port_security_enabled=False, security_group_ids=[])
    group = next(iter(cloud.security_groups))
    with pytest.raises(os_exc.BadRequestException, match="Port security must be enabled"):
        conn.network.update_port(port_id, security_group_ids=[group])
    with pytest.raises(os_exc.ConflictException, match="Port Security must be enabled"):
        conn.network.update_port(port_id, allowed_address_pairs=[{"ip_address": SITE_B}])


# -- EC2 (moto's server): SourceDestCheck off, route-table entries ----------------------------


def ec2_spec(ami: str, infra: str, vm_id: int, name: str = "front") -> NodeSpec:
    node = Compute(name=name, type="tosca.nodes.Compute", image=f"aws://{REGION}/{ami}")
    return NodeSpec(infrastructure_id=infra, vm_id=vm_id, name=name, ssh_public_key=KEY * 3,
                    compute=node, ssh_user="cloudadm")  # fmt: skip


def routes_to(cidr: str) -> list[dict[str, Any]]:
    return [r for t in raw().describe_route_tables()["RouteTables"] for r in t["Routes"]
            if r.get("DestinationCidrBlock") == cidr]  # fmt: skip


@pytest.fixture
def ec2(aws: str) -> EC2Provider:
    return make_provider("inst-routers")


def test_ec2_site_router_forwards_and_its_route_table_routes_the_other_sites(
        ec2: EC2Provider, ami: str) -> None:  # fmt: skip
    infra = str(uuid.uuid4())
    router = ec2.launch(ec2_spec(ami, infra, 0))
    instance_id = router.provider_id.split(";")[1]
    client = raw()
    assert client.describe_instance_attribute(InstanceId=instance_id, Attribute="sourceDestCheck")[
        "SourceDestCheck"]["Value"] is True  # as launched
    site_b, pool = "10.77.0.0/24", "192.168.77.0/24"  # moto's account is shared by the tests
    vpc_cidr = client.describe_vpcs()["Vpcs"][0]["CidrBlock"]
    (warning,) = ec2.route_through(router.provider_id, [site_b, pool, vpc_cidr])
    assert "inside its VPC" in warning  # it would shadow the VPC's local route
    assert client.describe_instance_attribute(InstanceId=instance_id, Attribute="sourceDestCheck")[
        "SourceDestCheck"]["Value"] is False
    (nic,) = client.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]["NetworkInterfaces"]  # fmt: skip
    assert nic["SourceDestCheck"] is False  # the interface's own, as EC2 keeps them one
    assert [r.get("InstanceId") for r in routes_to(site_b)] == [instance_id]
    assert [r.get("InstanceId") for r in routes_to(pool)] == [instance_id]
    assert all(r.get("GatewayId") == "local" for r in routes_to(vpc_cidr))
    ec2.route_through(router.provider_id, [site_b, pool])  # re-applied: still one route each
    assert len(routes_to(site_b)) == 1 and len(routes_to(pool)) == 1
    # a site gone: the route to it through this instance deleted, the others kept
    ec2.route_through(router.provider_id, [pool], drop=[site_b, "10.78.0.0/24"])
    assert routes_to(site_b) == [] and len(routes_to(pool)) == 1
    ec2.route_through(router.provider_id, [site_b, pool])
    # the infrastructure's groups take what the other sites send (private ranges only)
    ec2.route_through(router.provider_id, ["198.51.100.0/24"])
    groups = client.describe_security_groups(Filters=[
        {"Name": "tag:orbis.infrastructure", "Values": [infra]}])["SecurityGroups"]
    opened = [sorted(r["CidrIp"] for p in g["IpPermissions"] if p["IpProtocol"] == "-1"
                     for r in p["IpRanges"]) for g in groups]  # fmt: skip
    assert opened == [sorted([pool, site_b])] * len(groups) and groups
    # a router made anew at the site takes the routes over
    again = ec2.launch(ec2_spec(ami, infra, 2))
    ec2.route_through(again.provider_id, [site_b])
    assert [r.get("InstanceId") for r in routes_to(site_b)] == [again.provider_id.split(";")[1]]
    # destroying a router removes the routes through it (no black hole left in the VPC)
    ec2.destroy(router.provider_id)
    assert routes_to(pool) == [] and len(routes_to(site_b)) == 1
    ec2.destroy(again.provider_id)
    assert routes_to(site_b) == []
    with pytest.raises(NotFound):
        ec2.route_through(f"{REGION};i-0123456789abcdef0", [site_b])


# -- the engine: which node routes which CIDRs, and what happens when the cloud refuses ---------


def row(name: str, vm_id: int, site: str, provider_id: str, private_ip: str,
        public_ip: str | None = None) -> NodeRow:  # fmt: skip
    return NodeRow(infrastructure_id="inf-1", vm_id=vm_id, name=name, site=site,
                   provider_id=provider_id, private_ip=private_ip, public_ip=public_ip,
                   deleted=False)  # fmt: skip


TWO_SITES = Overlay(
    central_points=[CentralPoint("cp", "front", POOL), CentralPoint("cp2", "backup", BACKUP_POOL)],
    members=[Member("vr", "backup", True, "cp")])


def test_each_sites_router_routes_the_other_sites_and_the_pools() -> None:
    rows = [row("front", 0, "osA", "a0", "10.0.0.10", "203.0.113.5"),
            row("worker-a", 1, "osA", "a1", "10.0.0.11"),
            row("backup", 2, "awsB", "b2", "10.1.0.20", "198.51.100.7"),
            row("worker-b", 3, "awsB", "b3", "10.1.0.21")]  # fmt: skip
    known = OverlayState(site_subnets={"osA": "10.0.0.0/24", "awsB": SITE_B})
    routes = [(r.name, cidrs) for r, cidrs in site_routes(TWO_SITES, rows, known)]
    assert routes == [("backup", ["10.0.0.0/24", POOL, BACKUP_POOL]),
                      ("front", [SITE_B, POOL, BACKUP_POOL])]  # fmt: skip
    # before the subnets are measured, the pools only; a removed router routes nothing
    assert [c for _, c in site_routes(TWO_SITES, rows, None)] == [[POOL, BACKUP_POOL]] * 2
    rows[2] = replace_row(rows[2], deleted=True)
    assert [r.name for r, _ in site_routes(TWO_SITES, rows, known)] == ["front"]


def replace_row(r: NodeRow, **changes: Any) -> NodeRow:
    fresh = row(r.name, r.vm_id, r.site or "", r.provider_id or "", r.private_ip or "",
                r.public_ip)  # fmt: skip
    for key, value in changes.items():
        setattr(fresh, key, value)
    return fresh


def test_only_cloud_providers_have_anything_to_route(cloud: OpenStackStandin,
                                                     tmp_path: Path) -> None:  # fmt: skip
    assert routes_on_cloud(openstack(cloud))
    assert routes_on_cloud(EC2Provider(AUTH, options=FAST))
    assert not routes_on_cloud(SimProvider(tmp_path / "sim.json"))  # nodes route themselves


def test_a_refusal_fails_that_router_only_and_its_log_says_why(cloud: OpenStackStandin) -> None:
    p = openstack(cloud)
    a = p.launch(os_spec("front", 0, public=True))
    b = p.launch(replace(os_spec("backup", 2, public=True), infrastructure_id="inf-1"))
    rows = [row("front", 0, "osA", a.provider_id, a.private_ip or "", a.public_ip),
            row("backup", 2, "osB", b.provider_id, b.private_ip or "", b.public_ip)]  # fmt: skip
    too_many = [f"10.{n}.0.0/24" for n in range(100, 121)]
    logs: list[tuple[int, str]] = []

    async def route(r: NodeRow, cidrs: list[str]) -> tuple[str, ...]:
        return await asyncio.to_thread(p.route_through, r.provider_id or "", cidrs)

    failed = asyncio.run(route_sites([(rows[0], [SITE_B]), (rows[1], too_many)], route,
                                     lambda r, text: logs.append((r.vm_id, text))))  # fmt: skip
    assert failed == {2}
    assert (0, f"Overlay: the cloud routes {SITE_B} through this node") in logs
    assert any(vm == 2 and text.startswith("Error: overlay:") and "exceeds the limit 20" in text
               for vm, text in logs)  # fmt: skip
    assert private_port(cloud, a.provider_id)["port_security_enabled"] is False
