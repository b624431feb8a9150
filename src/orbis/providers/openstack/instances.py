"""Servers: launch (idempotent per node: networks and groups under the infrastructure lock,
the server found or created, then ports and a floating IP), inspect, list, stop, start,
reboot (hard, as IM) and resize; the infrastructure's key pair.
"""

from __future__ import annotations

import base64
import time
from contextlib import suppress
from typing import Any

import openstack.exceptions as os_exc

from orbis.model.infrastructure import Compute
from orbis.model.states import NodeState
from orbis.placement.fit import GB, MB
from orbis.providers import cloudinit
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_NODE,
    LABEL_OWNER,
    LABEL_SSH_USER,
    LABEL_VM_ID,
    Machine,
    NodeSpec,
    ProviderError,
    Transient,
)
from orbis.providers.openstack.addresses import Addresses
from orbis.providers.openstack.images import Images
from orbis.providers.openstack.leases import Leases
from orbis.providers.openstack.networks import Networks, _NetPlan
from orbis.providers.openstack.security_groups import SecurityGroups
from orbis.providers.openstack.session import _slug, _typed, is_private
from orbis.providers.openstack.volumes import DISKS_LABEL, Volumes, _block_devices, _volume_disks

_STATES = dict.fromkeys(("ACTIVE", "VERIFY_RESIZE", "REBOOT", "HARD_REBOOT"), NodeState.RUNNING)

_STATES |= dict.fromkeys(("BUILD", "REBUILD", "RESIZE", "REVERT_RESIZE", "MIGRATING",
                          "PASSWORD", "RESCUE"), NodeState.PENDING)  # fmt: skip

_STATES |= {"SHUTOFF": NodeState.STOPPED, "SUSPENDED": NodeState.STOPPED}

_STATES |= {"DELETED": NodeState.OFF, "SOFT_DELETED": NodeState.OFF, "ERROR": NodeState.FAILED}


def keypair_name(infrastructure_id: str) -> str:
    return f"orbis-{infrastructure_id}"


class Instances(Images, Volumes, Networks, SecurityGroups, Addresses, Leases):
    """Creating, reading and driving servers."""

    def prepare(self, infrastructure_id: str) -> None:
        """Networks and the security group depend on the nodes: `launch` makes them, once."""

    def launch(self, spec: NodeSpec) -> Machine:
        compute = spec.compute or Compute(
            name=spec.name, type="tosca.nodes.Compute", num_cpus=spec.num_cpus,
            mem_size=spec.mem_size, image=spec.image, public=spec.public,
            ports=list(spec.ports))  # fmt: skip
        node = f"{spec.name}.{spec.vm_id}"
        what = f"node {node} of {spec.infrastructure_id}"
        with self._errors(what):
            with self._infra_locks[spec.infrastructure_id]:  # IM: nets/SGs under the infra lock
                plan = self._plan_networks(spec, compute)
                groups = self._security_groups(spec, compute, plan)
            server = self._find_server(spec.infrastructure_id, node)
            warnings: tuple[str, ...] = ()
            if server is None:
                server, warnings = self._create_server(spec, compute, node, plan, groups)
            server = self._wait(server.id, what)
            if server.status == "ERROR":
                fault = (server.fault or {}).get("message") or "the server went to ERROR"
                with suppress(os_exc.SDKException):
                    self.conn.compute.delete_server(server)  # the next attempt starts clean
                raise _typed(None, f"{self.site}: {what}: {fault}")
            warnings += self._configure_ports(server, spec, compute, plan)
            if plan.fip_pools and not self._public_ips(server):
                self._attach_floating_ip(server, plan.fip_pools, spec, node)
                server = self.conn.compute.get_server(server.id)
            return self._machine(server, warnings)

    def inspect(self, provider_id: str) -> Machine:
        with self._errors(f"inspect {provider_id}"):
            server = self._server(provider_id)
            if server is None:
                return Machine(provider_id=provider_id, state=NodeState.OFF)
            if server.status == "VERIFY_RESIZE":  # IM confirms a resized server on sight
                self.conn.compute.confirm_server_resize(server)
            return self._machine(server)

    def list_owned(self) -> list[Machine]:
        with self._errors("list servers"):
            return [self._machine(s) for s in self.conn.compute.servers(details=True)
                    if self._mine(s.metadata or {})]  # fmt: skip

    def stop(self, provider_id: str) -> None:
        with self._errors(f"stop {provider_id}"):
            self.conn.compute.stop_server(provider_id)

    def start(self, provider_id: str) -> None:
        with self._errors(f"start {provider_id}"):
            self.conn.compute.start_server(provider_id)

    def reboot(self, provider_id: str) -> None:
        with self._errors(f"reboot {provider_id}"):
            self.conn.compute.reboot_server(provider_id, "HARD")  # IM reboots hard

    def alter(self, provider_id: str, num_cpus: float | None, mem_size: int | None) -> None:
        """Resize to the flavor IM's rule picks for the new sizes, then confirm it."""
        conn, what = self.conn, f"resize {provider_id}"
        with self._errors(what):
            server = conn.compute.get_server(provider_id)
            current = self._current_flavor(server)
            wanted = Compute(name=server.name, type="resize",
                             num_cpus=num_cpus or (current.vcpus if current else None),
                             mem_size=mem_size or (current.ram_mb * MB if current else None))
            flavor = self._choose_flavor(wanted)
            if current and flavor.id == current.id:
                return
            conn.compute.resize_server(server, flavor.id)
            server = self._wait(server.id, what, until=("VERIFY_RESIZE",), need_address=False)
            if server.status == "ERROR":
                raise ProviderError(f"{self.site}: {what}: {(server.fault or {}).get('message')}")
            conn.compute.confirm_server_resize(server)

    def _create_server(self, spec: NodeSpec, compute: Compute, node: str, plan: _NetPlan,
                       groups: list[str]) -> tuple[Any, tuple[str, ...]]:  # fmt: skip
        kind, image_id = self._image(compute.image or spec.image, compute)
        boot_size = -(-compute.disk_size // GB) if compute.disk_size else None
        attrs: dict[str, Any] = {}
        warnings: tuple[str, ...] = ()
        if self.reservation:
            lease = self._lease(spec, compute)
            warnings = lease.warnings
            attrs["scheduler_hints"] = lease.scheduler_hints() or None
            flavor_id = lease.flavor_id if lease.flavor_id else self._host_flavor(compute)
        else:
            # a boot volume of disk.0.size makes the flavor's disk irrelevant
            flavor_id = self._choose_flavor(compute, min_disk_gb=0 if boot_size else None).id
        user_data = spec.user_data or cloudinit.user_data(spec.ssh_public_key, user=spec.ssh_user)
        # the key by cloud-init (IM's way, for the login user), and as a Nova key pair too: the
        # image's own default user can then log in with it, whatever cloud-init does
        attrs["key_name"] = self._keypair(spec)
        labels = {**self._labels(spec.infrastructure_id), LABEL_NODE: node,
                  LABEL_VM_ID: str(spec.vm_id), LABEL_SSH_USER: spec.ssh_user}  # fmt: skip
        if spec.owner_mark:  # after the template's tags, which must not set it
            labels[LABEL_OWNER] = spec.owner_mark
        disks = _volume_disks(compute)
        if disks:
            labels[DISKS_LABEL] = ",".join(map(str, disks))  # what `snapshot` counts by
        attrs |= {
            "name": _slug(compute.instance_name or f"orbis-{spec.name}-{spec.vm_id}"),
            "flavor_id": flavor_id,
            "networks": [{"uuid": net_id} for net_id in plan.nics],
            "security_groups": [{"name": g} for g in groups],  # Nova takes ids for names
            "metadata": {**{str(k): str(v) for k, v in compute.tags.items()
                            if str(k) != LABEL_OWNER}, **labels},
            "user_data": base64.b64encode(user_data.encode()).decode(),
            "availability_zone": compute.availability_zone,
            "block_device_mapping": _block_devices(kind, image_id, boot_size, compute) or None,
            "image_id": image_id if kind == "image" else None,
        }
        server = self.conn.compute.create_server(**{k: v for k, v in attrs.items() if v})
        return server, warnings

    def _keypair(self, spec: NodeSpec) -> str | None:
        """The infrastructure's key pair (made once, shared by its nodes)."""
        if not spec.ssh_public_key:
            return None
        name = keypair_name(spec.infrastructure_id)
        if self.conn.compute.find_keypair(name) is None:
            # a conflict: another node of the infrastructure made it meanwhile
            with suppress(os_exc.ConflictException):
                self.conn.compute.create_keypair(name=name, public_key=spec.ssh_public_key)
        return name

    def owner_mark_of(self, provider_id: str) -> str | None:
        with self._errors(f"inspect {provider_id}"):
            server = self._server(provider_id)
        mark = (server.metadata or {}).get(LABEL_OWNER) if server is not None else None
        return str(mark) if mark else None

    def _wait(self, server_id: str, what: str, until: tuple[str, ...] = ("ACTIVE",),
              need_address: bool = True) -> Any:  # fmt: skip
        """Poll until the server is in `until` (with an address) or ERROR."""
        deadline = time.monotonic() + self.timeout
        while True:
            server = self.conn.compute.get_server(server_id)
            if server.status == "ERROR" or (server.status in until
                                            and (server.addresses or not need_address)):
                return server
            if time.monotonic() > deadline:
                raise Transient(f"{self.site}: {what}: still {server.status} after "
                                f"{self.timeout:g} s")  # fmt: skip
            time.sleep(self.poll_interval)

    def _machine(self, server: Any, warnings: tuple[str, ...] = ()) -> Machine:
        meta = server.metadata or {}
        private = [a["addr"] for addrs in (server.addresses or {}).values() for a in addrs
                   if a.get("OS-EXT-IPS:type") != "floating" and is_private(a["addr"])]
        public = self._public_ips(server)
        state = _STATES.get(str(server.status).upper(), NodeState.UNKNOWN)
        if state == NodeState.FAILED and server.fault:
            warnings += (str(server.fault.get("message")),)
        vm_id = str(meta.get(LABEL_VM_ID, ""))
        return Machine(
            provider_id=server.id, state=state,
            private_ip=private[0] if private else None, public_ip=public[0] if public else None,
            ssh_user=meta.get(LABEL_SSH_USER, "cloudadm"),
            infrastructure_id=meta.get(LABEL_INFRASTRUCTURE),
            vm_id=int(vm_id) if vm_id.isdigit() else None, warnings=warnings)  # fmt: skip
