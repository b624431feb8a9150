"""The deployer's overlay hook on a cloud site (issue 13): after the overlay's setup, the site
router's cloud (the OpenStack stand-in, reached through the infrastructure's auth line as in a
deployment) routes the other sites' subnets and the pools through it; a refusal fails that node
and its log says why; a site gone, its route is dropped."""

from __future__ import annotations

import asyncio
from pathlib import Path

from orbis.engine.deployer import Deployer
from orbis.model.infrastructure import Compute, Template
from orbis.overlay import state as overlay_state
from orbis.overlay.model import CentralPoint, Member, Overlay
from orbis.placement.fit import GB
from orbis.placement.sites import SiteRegistry
from orbis.providers.base import NodeSpec
from orbis.providers.openstack import OpenStackProvider
from orbis.providers.sim import SimProvider
from orbis.store.repository import Store
from orbis.testing.standins.openstack import OpenStackStandin

UBUNTU = "6e1f2a3b-0000-4000-8000-000000000001"
POOL, SITE_B = "192.168.255.0/24", "10.1.0.0/24"


def test_the_site_routers_cloud_routes_the_other_sites_and_a_refusal_fails_it(
        tmp_path: Path) -> None:  # fmt: skip
    with OpenStackStandin() as cloud:
        line = cloud.auth_line()
        store = Store(f"sqlite:///{tmp_path / 'db'}")
        default = SimProvider(tmp_path / "sim.db", 0, 0, 0)
        deployer = Deployer(store, default, tmp_path / "work",
                            sites=SiteRegistry(default, options=cloud.fast_options),
                            clouds=lambda _infra: [line])  # fmt: skip
        infra = store.create_infrastructure(id="inf-1", owner_key="k", owner_name="alice",
                                            template="", provider="openstack")  # fmt: skip
        vm_id, edge = store.add_nodes(infra.id, ["front", "edge"])
        node = Compute(name="front", type="tosca.nodes.indigo.Compute", image=UBUNTU,
                       public=True, num_cpus=1, mem_size=1 * GB)  # fmt: skip
        machine = OpenStackProvider(line, options=cloud.fast_options).launch(NodeSpec(
            infrastructure_id=infra.id, vm_id=vm_id, name="front", image=UBUNTU, public=True,
            ssh_public_key="ssh-ed25519 AAAA test", compute=node))  # fmt: skip
        store.update_node(infra.id, vm_id, provider_id=machine.provider_id, site=line["id"],
                          private_ip=machine.private_ip, public_ip=machine.public_ip)  # fmt: skip
        # siteB's router: a site whose auth line the infrastructure no longer has
        store.update_node(infra.id, edge, provider_id="gone-1", site="siteB",
                          private_ip="10.1.0.5", public_ip="198.51.100.9")  # fmt: skip
        overlay_state.save(store, infra.id, overlay_state.OverlayState(
            site_subnets={line["id"]: "10.0.0.0/24", "siteB": SITE_B}))  # fmt: skip
        template = Template(source_file="t.yaml", version="tosca_simple_yaml_1_0",
                            overlay=Overlay([CentralPoint("cp", "front", POOL)],
                                            [Member("vr", "edge", True, "cp")]))  # fmt: skip
        route_sites = deployer.configuration._route_sites  # noqa: SLF001 - under test

        failed = asyncio.run(route_sites(infra, template, store.nodes(infra.id)))

        assert failed == {edge}  # the other site's trouble stops only its router
        logs = {r.vm_id: r.log for r in store.nodes(infra.id)}
        assert "Error: overlay: its cloud cannot be asked to route: site siteB" in logs[edge]
        (port,) = [p for p in cloud.ports.values() if p["device_id"] == machine.provider_id
                   and not cloud.networks[p["network_id"]]["router:external"]]  # fmt: skip
        assert port["port_security_enabled"] is False
        subnet = cloud.subnets[port["fixed_ips"][0]["subnet_id"]]
        assert subnet["host_routes"] == [{"destination": SITE_B, "nexthop": machine.private_ip},
                                         {"destination": POOL, "nexthop": machine.private_ip}]
        assert f"Overlay: the cloud routes {SITE_B}, {POOL} through this node" in logs[vm_id]

        # 20 more sites: Neutron's 20 host routes per subnet are exceeded
        overlay_state.save(store, infra.id, overlay_state.OverlayState(
            site_subnets={f"s{n}": f"10.{n}.0.0/24" for n in range(100, 121)}))  # fmt: skip
        failed = asyncio.run(route_sites(infra, template, store.nodes(infra.id)))
        assert failed == {vm_id, edge}
        log = next(r.log for r in store.nodes(infra.id) if r.vm_id == vm_id)
        assert "Error: overlay: the cloud did not make this node its site's router" in log
        assert "exceeds the limit 20" in log
        assert len(subnet["host_routes"]) == 2  # refused whole: nothing half-written

        # site B gone (its router removed, its subnet forgotten by the overlay's setup): the
        # route to it that this router's cloud carried is dropped, and what it routes recorded
        store.update_node(infra.id, edge, deleted=True)
        overlay_state.save(store, infra.id, overlay_state.OverlayState(
            site_subnets={line["id"]: "10.0.0.0/24"},
            cloud_routes={machine.provider_id: [SITE_B, POOL]}))  # fmt: skip
        failed = asyncio.run(route_sites(infra, template, store.nodes(infra.id)))
        assert failed == set()
        assert subnet["host_routes"] == [{"destination": POOL, "nexthop": machine.private_ip}]
        known = overlay_state.load(store, infra.id)
        assert known is not None and known.cloud_routes == {machine.provider_id: [POOL]}
