"""Floating IPs, IM's way: a free one of the pool reused before one is allocated (and
tagged), private-range ones refused, the attach tried over the node's ports.
"""

from __future__ import annotations

import time
from typing import Any

import openstack.exceptions as os_exc

from orbis.providers.base import LABEL_NODE, NodeSpec, ProviderError
from orbis.providers.openstack.networks import _SiteNet
from orbis.providers.openstack.session import (
    OpenStackSession,
    _message,
    _orbis_tags,
    _typed,
    is_private,
)

FIP_ATTEMPTS = 5  # IM tries to attach a floating IP 5 times, rotating over the ports


class Addresses(OpenStackSession):
    """A node's floating IP and its public addresses."""

    def _attach_floating_ip(self, server: Any, pools: list[_SiteNet], spec: NodeSpec,
                            node: str) -> None:  # fmt: skip
        """IM's way: reuse a free IP of the pool, else allocate one (a private-range one is
        released and the next pool tried), attach it trying the node's ports in turn."""
        conn = self.conn
        ports = list(conn.network.ports(device_id=server.id))
        if not ports:
            raise ProviderError(f"{self.site}: node {node} has no port for a floating IP")
        errors: list[str] = []
        for pool in dict.fromkeys(p.id for p in pools):
            with self._fip_lock:
                ip = next((i for i in conn.network.ips(floating_network_id=pool)
                           if not i.port_id and not _orbis_tags(i.tags)
                           and not is_private(i.floating_ip_address)), None)  # fmt: skip
                created = ip is None
                ip = ip or self._new_floating_ip(pool, spec.infrastructure_id, node, errors)
                if ip is None:
                    continue
                for attempt in range(FIP_ATTEMPTS):
                    try:
                        conn.network.update_ip(ip, port_id=ports[attempt % len(ports)].id)
                        return
                    except os_exc.HttpException as err:
                        errors.append(_message(err))
                        time.sleep(self.poll_interval)
                if created:
                    conn.network.delete_ip(ip, ignore_missing=True)
        raise _typed(None, f"{self.site}: no floating IP for {node}: {'; '.join(errors)}")

    def _new_floating_ip(self, pool: str, infra: str, node: str, errors: list[str]) -> Any:
        """A floating IP allocated (and tagged) for `node`; None if the pool has no public one."""
        conn = self.conn
        try:
            ip = conn.network.create_ip(floating_network_id=pool, description=f"Orbis {node}")
        except os_exc.HttpException as err:
            errors.append(_message(err))
            return None
        conn.network.set_tags(ip, [*self._tags(infra), f"{LABEL_NODE}={node}"])
        if is_private(ip.floating_ip_address):  # some pools are NATed: useless from outside
            conn.network.delete_ip(ip)
            errors.append(f"pool {pool} gave private address {ip.floating_ip_address}")
            return None
        return ip

    @staticmethod
    def _public_ips(server: Any) -> list[str]:
        return [a["addr"] for addrs in (server.addresses or {}).values() for a in addrs
                if a.get("OS-EXT-IPS:type") == "floating" or not is_private(a["addr"])]
