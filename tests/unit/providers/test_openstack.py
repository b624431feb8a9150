"""The OpenStack provider, driving openstacksdk over real HTTP against the stand-in cloud."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from orbis.model.infrastructure import Compute, Network, NetworkInterface, PortSpec, Volume
from orbis.model.states import NodeState
from orbis.placement.fit import GB
from orbis.providers.base import (
    NodeSpec,
    NotFound,
    ProviderAuthError,
    ProviderError,
    QuotaExceeded,
    Transient,
)
from orbis.providers.openstack import OpenStackProvider, _typed, is_private, keystone_base
from orbis.testing.standins.openstack import (
    ACCESS_TOKEN,
    PASSWORD,
    OpenStackStandin,
)

UBUNTU = "6e1f2a3b-0000-4000-8000-000000000001"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOrbisTestKey orbis@test"


@pytest.fixture
def cloud() -> Iterator[OpenStackStandin]:
    with OpenStackStandin() as standin:
        yield standin


def provider(cloud: OpenStackStandin, kind: str = "3.x_password", **auth: str) -> OpenStackProvider:
    return OpenStackProvider(cloud.auth_line(kind, **auth), options=cloud.fast_options)


def spec(infra: str = "inf-1", vm_id: int = 0, *, public: bool = False, image: str = UBUNTU,
         networks: tuple[Network, ...] = (), **compute: Any) -> NodeSpec:  # fmt: skip
    compute = {"num_cpus": 1, "mem_size": 1 * GB} | compute
    node = Compute(name="front", type="tosca.nodes.indigo.Compute", image=image, public=public,
                   **compute)  # fmt: skip
    return NodeSpec(infrastructure_id=infra, vm_id=vm_id, name="front", image=image,
                    public=public, ssh_public_key=KEY, compute=node, networks=networks)


def created(cloud: OpenStackStandin, path: str) -> list[Any]:
    """Bodies of successful POSTs to `path` (the stand-in logs every request)."""
    return [body for method, p, body, status in cloud.requests
            if method == "POST" and p.endswith(path) and status < 300]  # fmt: skip


def the_server(cloud: OpenStackStandin) -> dict[str, Any]:
    (server,) = cloud.servers.values()
    return server


def groups(cloud: OpenStackStandin) -> dict[str, dict[str, Any]]:
    """The security groups Orbis made, by name (the project's `default` is not one)."""
    return {g["name"]: g for g in cloud.security_groups.values() if g["name"] != "default"}


def rules(group: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {(r["protocol"], r.get("port_range_min"), r.get("port_range_max"),
             r.get("remote_ip_prefix"), r.get("remote_group_id"))
            for r in group["security_group_rules"]}  # fmt: skip


def server_ports(cloud: OpenStackStandin, server_id: str) -> dict[str, dict[str, Any]]:
    """The server's Neutron ports, by network name."""
    return {cloud.networks[p["network_id"]]["name"]: p for p in cloud.ports.values()
            if p["device_id"] == server_id}  # fmt: skip


# -- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "base"), [
    ("keystone.example.org", "http://keystone.example.org:80"),
    ("https://keystone.example.org", "https://keystone.example.org:443"),
    ("https://keystone.example.org:5000/v3/", "https://keystone.example.org:5000"),
    ("http://keystone.example.org:5000/", "http://keystone.example.org:5000"),
    ("https://cloud.example.org/identity/v3", "https://cloud.example.org:443/identity"),
])  # fmt: skip
def test_keystone_url_is_normalised_as_im_does(host: str, base: str) -> None:
    assert keystone_base(host) == base


@pytest.mark.parametrize("host", ["{url}/v3/", "{url}/", "127.0.0.1:{port}"])
def test_normalised_urls_reach_keystone(cloud: OpenStackStandin, host: str) -> None:
    port = cloud.url.rsplit(":", 1)[1]
    p = provider(cloud, host=host.format(url=cloud.url, port=port), api_version="2.1")
    assert p.conn.current_project_id == cloud.project["id"]
    assert ("POST", "/v3/auth/tokens") in [(r[0], r[1]) for r in cloud.requests]


def test_password_auth_scopes_to_the_tenant(cloud: OpenStackStandin) -> None:
    p = provider(cloud, tenant="other")
    assert p.conn.current_project_id == cloud.projects[1]["id"]
    assert p.site == "standin" and p.name == "openstack"
    (body,) = created(cloud, "/v3/auth/tokens")
    assert body["auth"]["identity"]["methods"] == ["password"]
    assert body["auth"]["scope"]["project"] == {"name": "other", "domain": {"name": "Default"}}


def test_application_credential_auth(cloud: OpenStackStandin) -> None:
    p = provider(cloud, "3.x_appcred")
    assert [f.name for f in p.flavors()][:2] == ["m1.tiny", "m1.small"]
    (body,) = created(cloud, "/v3/auth/tokens")
    assert body["auth"]["identity"]["methods"] == ["application_credential"]


@pytest.mark.parametrize(("domain", "index"), [(None, 0), ("other", 1), ("7b6e4c6b5f3a4e7c9c1d2e3f40516273", 1)])  # fmt: skip  # noqa: E501
def test_oidc_federation_scopes_to_the_project_in_domain(
    cloud: OpenStackStandin, domain: str | None, index: int
) -> None:
    extra = {"domain": domain} if domain else {}
    p = provider(cloud, "3.x_oidc_access_token", **extra)
    assert p.conn.current_project_id == cloud.projects[index]["id"]
    paths = [r[1] for r in cloud.requests]
    assert "/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/openid/auth" in paths
    assert "/v3/auth/projects" in paths
    scoped = created(cloud, "/v3/auth/tokens")[-1]
    assert scoped["auth"]["identity"]["methods"] == ["token"]
    assert scoped["auth"]["scope"]["project"]["id"] == cloud.projects[index]["id"]


def test_oidc_unknown_project_is_not_found(cloud: OpenStackStandin) -> None:
    with pytest.raises(NotFound, match="nowhere"):
        provider(cloud, "3.x_oidc_access_token", domain="nowhere").flavors()


def test_v2_password_auth(cloud: OpenStackStandin) -> None:
    p = provider(cloud, "2.0_password")
    assert p.images()[0].url == f"ost://127.0.0.1/{UBUNTU}"
    assert created(cloud, "/v2.0/tokens")[0]["auth"]["tenantName"] == "demo"


@pytest.mark.parametrize("kind", ["3.x_password", "3.x_appcred", "3.x_oidc_access_token"])
def test_bad_credentials_are_an_auth_error_without_the_secret(
    cloud: OpenStackStandin, kind: str
) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        provider(cloud, kind, password="wrong-secret").flavors()
    assert "wrong-secret" not in str(caught.value) and PASSWORD not in str(caught.value)
    assert ACCESS_TOKEN not in str(caught.value)


def test_refusing_cloud_and_unknown_auth_version(cloud: OpenStackStandin) -> None:
    cloud.refuse_auth = True
    with pytest.raises(ProviderAuthError):
        provider(cloud).quotas()
    with pytest.raises(ProviderError, match="2.0_voms is not supported"):
        provider(cloud, "2.0_voms").flavors()


def test_service_region_selects_the_catalog_region(cloud: OpenStackStandin) -> None:
    assert provider(cloud, service_region="RegionOne").flavors()
    with pytest.raises(ProviderError) as caught:
        provider(cloud, service_region="Elsewhere").flavors()
    assert not isinstance(caught.value, ProviderAuthError)


# -- catalogue ----------------------------------------------------------------------------------


def test_flavors_read_extra_specs_and_skip_disabled(cloud: OpenStackStandin) -> None:
    flavors = {f.name: f for f in provider(cloud).flavors()}
    assert "m1.old" not in flavors  # disabled
    v100 = flavors["g1.v100"]
    assert (v100.gpus, v100.gpu_vendor, v100.gpu_model, v100.pci_devices) == (
        2, "NVIDIA", "Tesla V100", 2)  # fmt: skip
    assert flavors["gpu.t4"].gpus == 1 and flavors["gpu.t4"].extra["gpu_count_unknown"]
    assert flavors["sgx.medium"].sgx and not flavors["m1.large"].sgx
    assert any(p.endswith("/os-extra_specs") for _, p, _, _ in cloud.requests)


@pytest.mark.parametrize(("wanted", "flavor"), [
    ({}, "m1.small"),  # m1.tiny's 1 GB disk is under IM's 5 GB; m1.old would fit but is disabled
    ({"num_cpus": 2, "mem_size": 3 * GB}, "m1.medium"),
    ({"num_gpus": 1}, "gpu.t4"),  # the fewest PCI devices
    ({"num_gpus": 2}, "gpu.t4"),  # a bare "gpu" spec has no count check (IM)
    ({"num_gpus": 2, "gpu_vendor": "nvidia", "gpu_model": "V100"}, "g1.v100"),
    ({"features": {"cpu.sgx": True}}, "sgx.medium"),
    ({"instance_type": "m1.l*"}, "m1.large"),
])  # fmt: skip
def test_flavor_choice_follows_im(cloud: OpenStackStandin, wanted: dict[str, Any], flavor: str
                                  ) -> None:  # fmt: skip
    p = provider(cloud)
    p.launch(spec(**wanted))
    assert cloud.flavors[the_server(cloud)["flavor"]["id"]]["name"] == flavor


def test_node_fitting_no_flavor_is_not_found_with_reasons(cloud: OpenStackStandin) -> None:
    with pytest.raises(NotFound, match=r"no flavor fits front \(closest: .*vCPUs"):
        provider(cloud).launch(spec(num_cpus=64))
    assert not cloud.servers


@pytest.mark.parametrize("image", [UBUNTU, "Ubuntu 22.04", f"ost://127.0.0.1/{UBUNTU}",
                                   f"ost://127.0.0.1:8774/image/{UBUNTU}"])  # fmt: skip
def test_image_forms(cloud: OpenStackStandin, image: str) -> None:
    provider(cloud).launch(spec(image=image))
    assert the_server(cloud)["image"]["id"] == UBUNTU


@pytest.mark.parametrize(("image", "match"), [
    (f"ost://other.example.org/{UBUNTU}", "another site"),
    ("ost://127.0.0.1/does-not-exist", "not found"),
    ("CentOS 7", "not found"),  # deactivated
    ("aws://us-east-1/ami-123", "not an OpenStack image"),
])  # fmt: skip
def test_bad_images_are_not_found(cloud: OpenStackStandin, image: str, match: str) -> None:
    with pytest.raises(NotFound, match=match):
        provider(cloud).launch(spec(image=image))


def test_images_and_quotas(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    (image,) = p.images()  # the deactivated one is left out
    assert (image.url, image.os_distro, image.os_version) == (
        f"ost://127.0.0.1/{UBUNTU}", "ubuntu", "22.04")  # fmt: skip
    p.launch(spec(public=True))
    quotas = p.quotas()
    assert (quotas["instances"].used, quotas["instances"].limit) == (1, 10)
    assert (quotas["cores"].used, quotas["ram"].used) == (1, 2048)  # m1.small
    # Neutron counts the project's default group with the private and public nets' ones
    assert quotas["floating_ips"].used == 1 and quotas["security_groups"].used == 3
    assert quotas["volumes"].limit == 10


# -- networks, floating IPs, security groups ----------------------------------------------------


def test_public_node_gets_private_net_router_and_floating_ip(cloud: OpenStackStandin) -> None:
    machine = provider(cloud).launch(spec(public=True))
    nets = {n["name"]: n for n in cloud.networks.values()}
    ours = nets["orbis-inf-1-private"]
    assert "orbis.infrastructure=inf-1" in ours["tags"]
    assert cloud.subnets[ours["subnets"][0]]["cidr"] == "10.0.0.0/24"
    (router,) = cloud.routers.values()
    assert router["name"] == "orbis-inf-1"
    assert router["external_gateway_info"]["network_id"] == nets["public"]["id"]
    # the server is on the private net only: the external pool is never a second NIC
    (server_body,) = created(cloud, "/compute/v2.1/servers")
    assert server_body["server"]["networks"] == [{"uuid": ours["id"]}]
    assert machine.private_ip == "10.0.0.10" and machine.public_ip == "203.0.113.10"
    assert machine.state == NodeState.RUNNING and machine.ssh_user == "cloudadm"


def test_existing_private_network_and_router_are_used(cloud: OpenStackStandin) -> None:
    with OpenStackStandin(private_network=True) as other:
        machine = provider(other).launch(spec(public=True))
        assert {n["name"] for n in other.networks.values()} == {"public", "private"}
        assert list(other.routers) == ["r-default"]
        assert machine.public_ip is not None and not is_private(machine.public_ip)


def test_free_cidr_skips_ranges_in_use(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    p.launch(spec("inf-a", networks=(Network("lan", create=True),)))
    p.launch(spec("inf-b", networks=(Network("lan", create=True),)))
    cidrs = sorted(s["cidr"] for s in cloud.subnets.values() if s["name"].startswith("orbis-"))
    assert cidrs == ["10.0.0.0/24", "10.0.1.0/24"]


def test_private_range_floating_ip_is_released_and_next_pool_tried() -> None:
    with OpenStackStandin(private_pool=True) as cloud:
        machine = provider(cloud).launch(spec(public=True))
        assert machine.public_ip is not None and machine.public_ip.startswith("203.0.113.")
        assert [f["floating_ip_address"] for f in cloud.floatingips.values()] == [
            machine.public_ip]
        assert len(created(cloud, "/network/v2.0/floatingips")) == 2  # ext-nat's, then public's
        assert [m for m, p, _, _ in cloud.requests if p.startswith("/network/v2.0/floatingips/")
                and m == "DELETE"] == ["DELETE"]  # the 172.24.4.x one  # fmt: skip
        router = next(iter(cloud.routers.values()))  # gateway on the public pool, not ext-nat
        assert cloud.networks[router["external_gateway_info"]["network_id"]]["name"] == "public"


def test_unassigned_floating_ip_is_reused_and_not_released(cloud: OpenStackStandin) -> None:
    public = next(n for n in cloud.networks.values() if n["name"] == "public")
    free = cloud._neutron_create("floatingips", {"floating_network_id": public["id"]})
    p = provider(cloud)
    machine = p.launch(spec(public=True))
    assert machine.public_ip == free["floating_ip_address"]
    assert not created(cloud, "/network/v2.0/floatingips")
    p.destroy(machine.provider_id)
    assert cloud.floatingips[free["id"]]["port_id"] is None  # detached, kept


def test_public_network_named_by_provider_id(cloud: OpenStackStandin) -> None:
    nets = (Network("lan"), Network("wan", public=True, provider_id="public"))
    node = spec(public=True, networks=nets, interfaces=[NetworkInterface("lan", 0),
                                                        NetworkInterface("wan", 1)])  # fmt: skip
    assert provider(cloud).launch(node).public_ip == "203.0.113.10"
    with pytest.raises(NotFound, match="public network missing not found"):
        provider(cloud).launch(spec("inf-2", public=True, networks=(
            Network("wan", public=True, provider_id="missing"),)))  # fmt: skip


def test_without_pools_the_node_sits_on_the_provider_network() -> None:
    with OpenStackStandin(pools=False) as cloud:
        machine = provider(cloud).launch(spec(public=True))
        assert machine.public_ip == "203.0.113.10" and machine.private_ip is None
        assert not cloud.floatingips and not cloud.routers
        assert len(cloud.networks) == 1  # no private network was made


def test_security_group_per_network(cloud: OpenStackStandin) -> None:
    lan = Network("lan", outports=[PortSpec(443, remote_cidr="10.1.0.0/16"),
                                   PortSpec(0, protocol="icmp")])  # fmt: skip
    nets = (lan, Network("wan", public=True))
    node = spec(public=True, networks=nets, interfaces=[NetworkInterface("lan", 0),
                                                       NetworkInterface("wan", 1)],
                ports=[PortSpec(80), PortSpec(8000, protocol="udp", range_end=8010)])
    provider(cloud).launch(node)
    made = groups(cloud)
    assert set(made) == {"orbis-inf-1-lan", "orbis-inf-1-wan"}
    lan_group, wan_group = made["orbis-inf-1-lan"], made["orbis-inf-1-wan"]
    for group in made.values():
        assert group["description"] == "Security group created by Orbis for inf-1"
        assert "orbis.infrastructure=inf-1" in group["tags"]
        assert ("tcp", 1, 65535, None, group["id"]) in rules(group)
        assert ("udp", 1, 65535, None, group["id"]) in rules(group)
    # the network's outports on its own group; no SSH on a private net without a proxy
    assert ("tcp", 443, 443, "10.1.0.0/16", None) in rules(lan_group)
    assert ("icmp", None, None, "0.0.0.0/0", None) in rules(lan_group)
    assert not {r for r in rules(lan_group) if r[1] in (22, 80)}
    # the node's ports and SSH on its public side
    assert ("tcp", 80, 80, "0.0.0.0/0", None) in rules(wan_group)
    assert ("udp", 8000, 8010, "0.0.0.0/0", None) in rules(wan_group)
    assert ("tcp", 22, 22, "0.0.0.0/0", None) in rules(wan_group)
    assert ("tcp", 443, 443, "10.1.0.0/16", None) not in rules(wan_group)
    (port,) = server_ports(cloud, the_server(cloud)["id"]).values()  # the pool is no NIC
    assert set(port["security_groups"]) == {lan_group["id"], wan_group["id"]}  # not default


def test_sg_name_proxy_host_and_reuse(cloud: OpenStackStandin) -> None:
    nets = (Network("lan", sg_name="my-lan", proxy_host="user@bastion.example.org"),)
    p = provider(cloud)
    p.launch(spec(networks=nets, interfaces=[NetworkInterface("lan", 0)]))
    p.launch(spec(vm_id=1, networks=nets, interfaces=[NetworkInterface("lan", 0)]))
    (group,) = groups(cloud).values()  # looked up, not made twice
    assert group["name"] == "my-lan" and len(created(cloud, "/security-groups")) == 1
    assert ("tcp", 22, 22, "0.0.0.0/0", None) in rules(group)  # reached through a proxy host
    assert all(port["security_groups"] == [group["id"]] for port in cloud.ports.values()
               if port["device_owner"] == "compute:nova")  # fmt: skip


def test_private_node_gets_no_ssh_rule(cloud: OpenStackStandin) -> None:
    provider(cloud).launch(spec(public=False))
    (group,) = groups(cloud).values()
    assert group["name"] == "orbis-inf-1-private"
    assert not [r for r in group["security_group_rules"] if r.get("port_range_min") == 22]


def test_security_group_over_quota_is_quota_exceeded() -> None:
    with OpenStackStandin(quota={"security_groups": 1}) as cloud:  # the default one fills it
        with pytest.raises(QuotaExceeded, match="security_group"):
            provider(cloud).launch(spec())
        assert not cloud.servers


def test_additional_ip_becomes_allowed_address_pair(cloud: OpenStackStandin) -> None:
    nets = (Network("lan"), Network("dmz", create=True))
    node = spec(networks=nets, interfaces=[NetworkInterface("lan", 0),
                NetworkInterface("dmz", 1, additional_ip="10.0.1.200")])  # fmt: skip
    p = provider(cloud)
    machine = p.launch(node)
    ports = server_ports(cloud, machine.provider_id)
    assert [pair["ip_address"] for pair in ports["orbis-inf-1-dmz"]["allowed_address_pairs"]] \
        == ["10.0.1.200"]  # fmt: skip
    assert ports["orbis-inf-1-dmz"]["allowed_address_pairs"][0]["mac_address"] == \
        ports["orbis-inf-1-dmz"]["mac_address"]  # fmt: skip
    assert ports["orbis-inf-1-lan"]["allowed_address_pairs"] == []
    p.launch(node)  # idempotent: the pair is not added twice
    assert len(ports["orbis-inf-1-dmz"]["allowed_address_pairs"]) == 1


def test_router_node_has_no_port_security_and_routes_the_cidr(cloud: OpenStackStandin) -> None:
    lan = Network("lan", router="192.168.50.0/24,front")
    p = provider(cloud)
    router = p.launch(spec(networks=(lan,), interfaces=[NetworkInterface("lan", 0)]))
    (port,) = server_ports(cloud, router.provider_id).values()
    assert port["port_security_enabled"] is False and port["security_groups"] == []
    (body,) = created(cloud, "/compute/v2.1/servers")
    assert "security_groups" not in body["server"]  # Nova's default, then taken off the port
    subnet = cloud.subnets[port["fixed_ips"][0]["subnet_id"]]
    assert subnet["host_routes"] == [{"destination": "192.168.50.0/24",
                                      "nexthop": router.private_ip}]  # fmt: skip
    assert not groups(cloud)  # IM: none for the router
    # another node on the network is no router: port security and its group stay
    other = spec(vm_id=1, networks=(lan,), interfaces=[NetworkInterface("lan", 0)])
    assert other.compute is not None
    other = replace(other, name="back", compute=replace(other.compute, name="back"))
    machine = p.launch(other)
    (back,) = server_ports(cloud, machine.provider_id).values()
    assert back["port_security_enabled"] is True
    assert [cloud.security_groups[g]["name"] for g in back["security_groups"]] == [
        "orbis-inf-1-lan"]
    p.launch(spec(networks=(lan,), interfaces=[NetworkInterface("lan", 0)]))  # again: one route
    assert len(subnet["host_routes"]) == 1


# -- launch -------------------------------------------------------------------------------------


def test_launch_is_idempotent_and_labels_the_server(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    p.installation = "inst-1"
    first = p.launch(spec(public=True, vm_id=3))
    again = p.launch(spec(public=True, vm_id=3))
    assert again.provider_id == first.provider_id and again.public_ip == first.public_ip
    assert len(cloud.servers) == 1 and len(created(cloud, "/compute/v2.1/servers")) == 1
    assert len(cloud.floatingips) == 1
    meta = the_server(cloud)["metadata"]
    assert meta["orbis.infrastructure"] == "inf-1" and meta["orbis.node"] == "front.3"
    assert meta["orbis.installation"] == "inst-1"
    assert (first.infrastructure_id, first.vm_id) == ("inf-1", 3)


def test_key_arrives_by_cloud_init_and_as_the_infrastructures_key_pair(
    cloud: OpenStackStandin,
) -> None:
    site = provider(cloud)
    site.launch(spec())
    site.launch(spec(vm_id=1))
    first, second = cloud.servers.values()
    user_data = base64.b64decode(first["_user_data"]).decode()
    assert user_data.startswith("#cloud-config") and KEY in user_data and "cloudadm" in user_data
    assert first["key_name"] == second["key_name"] == "orbis-inf-1"
    assert cloud.keypairs["orbis-inf-1"]["public_key"] == KEY  # one pair for the two nodes
    site.cleanup("inf-1")
    assert cloud.keypairs == {}


def test_quota_refusal_is_quota_exceeded() -> None:
    with OpenStackStandin(quota={"instances": 1}) as cloud:
        p = provider(cloud)
        p.launch(spec(vm_id=0))
        with pytest.raises(QuotaExceeded, match="Quota exceeded for instances"):
            p.launch(spec(vm_id=1))


@pytest.mark.parametrize(("fault", "error"), [
    ("No valid host was found. There are not enough hosts available.", QuotaExceeded),
    ("Build of instance aborted: image download failed", ProviderError),
])  # fmt: skip
def test_server_in_error_reports_its_fault(fault: str, error: type[Exception]) -> None:
    with OpenStackStandin(fault=fault) as cloud:
        with pytest.raises(error, match=fault.split(".")[0]) as caught:
            provider(cloud).launch(spec())
        assert type(caught.value) is error
        assert not cloud.servers  # removed, so a retry starts clean


def test_inspect_reports_fault_of_error_server_and_off_when_gone(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec())
    cloud.servers[machine.provider_id] |= {"status": "ERROR", "fault": {
        "code": 500, "message": "Host failed", "created": "2024-01-01T00:00:00Z"}}
    failed = p.inspect(machine.provider_id)
    assert failed.state == NodeState.FAILED and failed.warnings == ("Host failed",)
    p.destroy(machine.provider_id)
    assert p.inspect(machine.provider_id).state == NodeState.OFF
    p.destroy(machine.provider_id)  # already gone: fine


def test_timeout_is_transient() -> None:
    with OpenStackStandin(build_polls=1000) as cloud:
        p = OpenStackProvider(cloud.auth_line(), options={"poll_interval": 0.01, "timeout": 0.2})
        with pytest.raises(Transient, match="still BUILD"):
            p.launch(spec())


def test_stop_start_reboot_and_resize(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec())
    p.stop(machine.provider_id)
    assert p.inspect(machine.provider_id).state == NodeState.STOPPED
    p.start(machine.provider_id)
    assert p.inspect(machine.provider_id).state == NodeState.RUNNING
    p.reboot(machine.provider_id)
    assert created(cloud, "/action")[-1] == {"reboot": {"type": "HARD"}}
    assert p.inspect(machine.provider_id).state == NodeState.RUNNING
    p.alter(machine.provider_id, num_cpus=2, mem_size=4 * GB)
    server = cloud.servers[machine.provider_id]
    assert cloud.flavors[server["flavor"]["id"]]["name"] == "m1.medium"
    assert server["status"] == "ACTIVE"
    assert [next(iter(b)) for b in created(cloud, "/action")][-2:] == ["resize", "confirmResize"]


def test_inspect_confirms_a_resized_server(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec())
    cloud.servers[machine.provider_id] |= {"status": "VERIFY_RESIZE", "_new_flavor": "3"}
    assert p.inspect(machine.provider_id).state == NodeState.RUNNING
    assert created(cloud, "/action")[-1] == {"confirmResize": None}


def test_volumes_go_in_the_block_device_mapping() -> None:
    # a mapping's volume_type needs Nova 2.67: the SDK asks for it when the cloud offers it
    with OpenStackStandin(compute_microversion="2.67") as cloud:
        _volumes_go_in_the_block_device_mapping(cloud)


def _volumes_go_in_the_block_device_mapping(cloud: OpenStackStandin) -> None:
    existing = cloud.add_volume(size=5)
    volumes = [Volume("disk.1", index=1, size=10 * GB, device="hdb", fs_type="ext4"),
               Volume("disk.2", index=2, volume_id=f"ost://127.0.0.1/{existing}", device="hdc"),
               Volume("disk.3", index=3, size=2 * GB, type="ephemeral"),
               Volume("disk.4", index=4, size=1 * GB, type="ssd")]  # fmt: skip
    p = provider(cloud)
    machine = p.launch(spec(volumes=volumes, disk_size=20 * GB))
    bdm = the_server(cloud)["_bdm"]
    assert bdm[0] == {"boot_index": 0, "uuid": UBUNTU, "source_type": "image",
                      "destination_type": "volume", "volume_size": 20,
                      "delete_on_termination": True}  # fmt: skip
    assert bdm[1] == {"boot_index": -1, "source_type": "blank", "volume_size": 10,
                      "destination_type": "volume", "guest_format": "ext4",
                      "delete_on_termination": True, "device_name": "/dev/vdb"}  # fmt: skip
    assert bdm[2] == {"boot_index": -1, "uuid": existing, "source_type": "volume",
                      "destination_type": "volume", "delete_on_termination": False,
                      "device_name": "/dev/vdc"}  # fmt: skip
    assert bdm[3]["destination_type"] == "local" and bdm[3]["guest_format"] == "ext3"
    assert bdm[4]["volume_type"] == "ssd"
    p.destroy(machine.provider_id)
    assert list(cloud.volumes) == [existing]  # blank ones went with the server
    assert cloud.volumes[existing]["status"] == "available"


def test_boot_from_existing_volume(cloud: OpenStackStandin) -> None:
    boot = cloud.add_volume(size=20, name="root")
    provider(cloud).launch(spec(image=f"ost://127.0.0.1/volume/{boot}"))
    server = the_server(cloud)
    assert server["image"] == "" and server["_bdm"][0]["uuid"] == boot
    assert server["_bdm"][0]["delete_on_termination"] is False


# -- cleanup and ownership ----------------------------------------------------------------------


def test_cleanup_leaves_nothing_of_the_infrastructure(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    p.launch(spec("inf-1", 0, public=True))
    p.launch(spec("inf-1", 1, volumes=[Volume("disk.1", size=GB)]))
    p.launch(spec("inf-2", 0))
    assert p.owned_infrastructures() == {"inf-1", "inf-2"}
    p.cleanup("inf-1")
    owned = cloud.owned()
    assert owned["servers"] == ["orbis-front-0"]  # inf-2's
    assert owned["networks"] == ["orbis-inf-2-private"]
    assert owned["security_groups"] == ["orbis-inf-2-private"] and not owned["floatingips"]
    assert [r["name"] for r in cloud.routers.values()] == ["orbis-inf-2"]
    p.cleanup("inf-2")
    assert not any(cloud.owned().values()), cloud.owned()
    assert {n["name"] for n in cloud.networks.values()} == {"public"}  # the site's own remains
    assert not cloud.ports


def test_list_owned_only_this_installation(cloud: OpenStackStandin) -> None:
    mine, theirs = provider(cloud), provider(cloud)
    mine.installation, theirs.installation = "A", "B"
    mine.launch(spec("inf-a"))
    theirs.launch(spec("inf-b"))
    assert [m.infrastructure_id for m in mine.list_owned()] == ["inf-a"]
    assert mine.owned_infrastructures() == {"inf-a"}
    assert mine.launch(spec("inf-b")).infrastructure_id == "inf-b"  # not B's server adopted
    assert len(cloud.servers) == 3


def test_error_mapping() -> None:
    assert isinstance(_typed(401, "x"), ProviderAuthError)
    assert isinstance(_typed(403, "Quota exceeded for cores"), QuotaExceeded)
    assert isinstance(_typed(413, "Request Entity Too Large"), QuotaExceeded)
    assert isinstance(_typed(404, "gone"), NotFound)
    assert isinstance(_typed(400, "Flavor 9 could not be found."), NotFound)
    assert isinstance(_typed(503, "busy"), Transient) and isinstance(_typed(429, "slow"), Transient)
    assert type(_typed(400, "bad")) is ProviderError


def test_destroy_order_and_release(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    machine = p.launch(spec(public=True))
    before = len(cloud.requests)
    p.destroy(machine.provider_id)
    calls = [(m, path) for m, path, _, _ in cloud.requests[before:] if m in ("POST", "DELETE")]
    kinds = [path.split("/")[3] for _, path in calls]  # servers / floatingips ...
    # both SGs off, IP released, server
    assert kinds == ["servers", "servers", "floatingips", "servers"]
    assert sorted(b["removeSecurityGroup"]["name"] for b in created(cloud, "/action")[-2:]) == [
        "orbis-inf-1-private", "orbis-inf-1-public"]  # fmt: skip
    assert not cloud.servers and not cloud.floatingips
    assert len(groups(cloud)) == 2  # shared: only cleanup removes them


def test_parallel_launches_share_one_network_and_group(cloud: OpenStackStandin) -> None:
    p = provider(cloud)
    with ThreadPoolExecutor(4) as pool:
        machines = list(pool.map(lambda i: p.launch(spec(vm_id=i, public=True)), range(4)))
    assert len({m.provider_id for m in machines}) == 4
    assert len({m.public_ip for m in machines}) == 4 and all(m.public_ip for m in machines)
    assert [n["name"] for n in cloud.networks.values()].count("orbis-inf-1-private") == 1
    assert set(groups(cloud)) == {"orbis-inf-1-private", "orbis-inf-1-public"}
    assert len(created(cloud, "/security-groups")) == 2 and len(cloud.routers) == 1


def test_cleanup_deletes_only_marked_groups_and_retries_while_in_use() -> None:
    with OpenStackStandin(sg_delete_conflicts=2) as cloud:
        p = provider(cloud)
        p.launch(spec(networks=(Network("lan", sg_name="shared"),)))
        # the user's own group of the same name pattern, and one whose tagging failed
        foreign = cloud._neutron_create("security-groups", {"name": "orbis-inf-1-other"})
        untagged = cloud._neutron_create("security-groups", {
            "name": "orbis-inf-1-x", "description": "Security group created by Orbis for inf-1"})
        p.cleanup("inf-1")
        names = {g["name"] for g in cloud.security_groups.values()}
        assert names == {"default", foreign["name"]}
        assert untagged["id"] not in cloud.security_groups
        deletes = [s for m, path, _, s in cloud.requests
                   if m == "DELETE" and "/security-groups/" in path]  # fmt: skip
        assert deletes.count(409) == 2 and deletes.count(204) == 2  # retried, then gone


def test_servers_carry_the_owner_mark_and_a_template_tag_cannot_set_it(
    cloud: OpenStackStandin,
) -> None:
    """Issue 11: an import adopts a server only if it carries the importer's owner mark."""
    forged = spec(tags={"orbis.owner": "someone-elses-mark", "team": "a"})
    machine = provider(cloud).launch(replace(forged, owner_mark="mark-of-the-owner"))
    assert the_server(cloud)["metadata"]["team"] == "a"
    assert provider(cloud).owner_mark_of(machine.provider_id) == "mark-of-the-owner"
    assert provider(cloud).owner_mark_of("00000000-0000-4000-8000-00000000dead") is None
