"""Destroying a server in IM's order (host routes through it, groups and floating IPs off, the
server, then its volumes) and cleaning up an infrastructure (servers, loose volumes, lease, key
pair, floating IPs, then the shared security groups, networks and routers); what Orbis still
holds here.
"""

from __future__ import annotations

from contextlib import suppress

import openstack.exceptions as os_exc

from orbis.providers.base import LABEL_INFRASTRUCTURE
from orbis.providers.blazar import lease_name
from orbis.providers.openstack.instances import keypair_name
from orbis.providers.openstack.leases import Leases
from orbis.providers.openstack.routing import Routing
from orbis.providers.openstack.security_groups import _our_group
from orbis.providers.openstack.session import _orbis_tags
from orbis.providers.openstack.volumes import SERVER_LABEL, Volumes


class Teardown(Volumes, Routing, Leases):
    """destroy, cleanup and owned_infrastructures."""

    def destroy(self, provider_id: str) -> None:
        """IM's order: security groups and floating IPs off, the server, then its volumes: Nova
        deletes those of the boot-time mapping made with it, `add_disk`'s are deleted here once
        Nova has detached them; existing volumes are only detached (with the server)."""
        conn, what = self.conn, f"destroy {provider_id}"
        with self._errors(what):
            server = self._server(provider_id)
            if server is None:  # gone already (a retry): its volumes may not be
                self._delete_volumes(SERVER_LABEL, provider_id, what)
                return
            infra = (server.metadata or {}).get(LABEL_INFRASTRUCTURE)
            ours = {g.name for g in conn.network.security_groups()
                    if infra and _our_group(g, infra)}  # fmt: skip
            for group in server.security_groups or []:
                if group.get("name") in ours:
                    with suppress(os_exc.SDKException):
                        conn.compute.remove_security_group_from_server(server, group["name"])
            ports = list(conn.network.ports(device_id=server.id))
            with self._infra_locks[infra or ""]:  # routes through it (route_through) first
                self._drop_host_routes(ports)
            for port in ports:
                for ip in conn.network.ips(port_id=port.id):
                    if _orbis_tags(ip.tags):  # allocated by us: released
                        conn.network.delete_ip(ip, ignore_missing=True)
                    else:  # reused or fixed: only detached
                        conn.network.update_ip(ip, port_id=None)
            conn.compute.delete_server(server, ignore_missing=True)
            with suppress(os_exc.ResourceNotFound):
                conn.compute.wait_for_delete(server, interval=self.poll_interval,
                                             wait=self.timeout)  # fmt: skip
            self._delete_volumes(SERVER_LABEL, str(server.id), what)

    def cleanup(self, infrastructure_id: str) -> None:
        conn, tag = self.conn, f"{LABEL_INFRASTRUCTURE}={infrastructure_id}"
        with self._errors(f"cleanup of {infrastructure_id}"):
            for server in self._servers(infrastructure_id):
                self.destroy(server.id)
            # volumes add_disk made and never attached (a crash in between)
            self._delete_volumes(LABEL_INFRASTRUCTURE, infrastructure_id,
                                 f"cleanup of {infrastructure_id}")  # fmt: skip
            blazar = self._blazar()
            if blazar.available():
                blazar.delete(lease_name(infrastructure_id))
            conn.compute.delete_keypair(keypair_name(infrastructure_id), ignore_missing=True)
            for ip in conn.network.ips(tags=tag):
                conn.network.delete_ip(ip, ignore_missing=True)
            # shared resources last: the security groups (ours only), then networks and routers
            for group in [g for g in conn.network.security_groups()
                          if _our_group(g, infrastructure_id)]:  # fmt: skip
                self._retry_conflict(lambda g=group: conn.network.delete_security_group(g))
            routers = list(conn.network.routers())
            for net in conn.network.networks(tags=tag):
                for router in routers:
                    for subnet in net.subnet_ids or []:
                        with suppress(os_exc.NotFoundException, os_exc.BadRequestException):
                            conn.network.remove_interface_from_router(router, subnet=subnet)
                for port in conn.network.ports(network_id=net.id):
                    conn.network.delete_port(port, ignore_missing=True)
                self._retry_conflict(lambda n=net: conn.network.delete_network(n))
            for router in conn.network.routers(tags=tag):
                for port in conn.network.ports(device_id=router.id):
                    for fixed in port.fixed_ips or []:
                        with suppress(os_exc.NotFoundException):
                            conn.network.remove_interface_from_router(
                                router, subnet=fixed["subnet_id"])
                self._retry_conflict(lambda r=router: conn.network.delete_router(r))

    def owned_infrastructures(self) -> set[str]:
        conn, found = self.conn, super().owned_infrastructures()
        with self._errors("list networks"):
            for resource in [*conn.network.networks(), *conn.network.security_groups()]:
                labels = dict(t.split("=", 1) for t in resource.tags or [] if "=" in t)
                if self._mine(labels):
                    found.add(labels[LABEL_INFRASTRUCTURE])
        with self._errors("list volumes"):
            found |= {str(v.metadata[LABEL_INFRASTRUCTURE]) for v in self._labelled_volumes()}
        return found
