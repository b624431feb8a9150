"""Instances: launch (on demand or spot, idempotent per node), inspect, list, stop, start,
reboot and resize (IM's alterVM: stop, change type, start).

A launch finds the node's instance first (a retry after a crash), then builds on the other
concerns: the flavor (catalogue), the image, the subnet and security groups, the instance
itself, then its addresses, volumes and DNS records.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import re
from contextlib import suppress
from typing import Any

import botocore.exceptions

from orbis.model.infrastructure import Compute
from orbis.model.states import NodeState
from orbis.providers import cloudinit
from orbis.providers.base import (
    LABEL_NODE,
    LABEL_OWNER,
    LABEL_SSH_USER,
    Flavor,
    Machine,
    NodeSpec,
    NotFound,
    ProviderError,
    QuotaExceeded,
)
from orbis.providers.ec2.addresses import Addresses, _fixed_ip
from orbis.providers.ec2.catalogue import Catalogue
from orbis.providers.ec2.dns import Dns
from orbis.providers.ec2.errors import _code, _errors
from orbis.providers.ec2.images import Images, parse_image
from orbis.providers.ec2.networks import Networks, _node_networks
from orbis.providers.ec2.routes import Routes, routed_cidrs
from orbis.providers.ec2.security_groups import SecurityGroups
from orbis.providers.ec2.session import _ALIVE, _slug, _split_id, _tags
from orbis.providers.ec2.volumes import Volumes

KEY_NAME_MAX = 128  # IM: a public_key shorter than this is the name of an existing key pair


class Instances(Catalogue, Images, Networks, SecurityGroups, Dns, Addresses, Volumes, Routes):
    """Creating, finding and driving instances."""

    def prepare(self, infrastructure_id: str) -> None:
        """Networks and security groups need the node's networks: `launch` makes them."""

    def launch(self, spec: NodeSpec) -> Machine:
        compute = spec.compute or Compute(
            name=spec.name,
            type="tosca.nodes.Compute",
            num_cpus=spec.num_cpus,
            mem_size=spec.mem_size,
            image=spec.image,
            public=spec.public,
        )
        url = compute.image or spec.image
        if url:
            region, ami = parse_image(url, self.region)
        elif compute.os_distribution:
            region, ami = self.region, self.image_for_os(compute)
        else:
            raise NotFound(f"ec2: node {spec.name} names no image (aws://<region>/<ami>) and "
                           f"no operating system to find one by")  # fmt: skip
        ec2 = self.client(region)
        node = f"{spec.name}.{spec.vm_id}"
        what = f"node {node} of {spec.infrastructure_id}"
        # one launch per node at a time here, so a parallel retry finds the first one's machine
        with self._infra_lock(f"{spec.infrastructure_id}/{node}"), _errors(what):
            existing = self._find(ec2, spec.infrastructure_id, node)
            if existing is not None:
                if existing.get("State", {}).get("Name") == "stopped":
                    ec2.start_instances(InstanceIds=[existing["InstanceId"]])
                return self._until_addressed(ec2, region, existing["InstanceId"], spec, what)
            flavor = self.choose_flavor(compute, region)
            nets = _node_networks(spec, compute)
            vpc, subnet, warnings = self._subnet(ec2, spec, nets, compute, flavor.name)
            groups = self._security_groups(ec2, spec, vpc, nets)
            params = self._run_params(ec2, spec, compute, ami, flavor)
            public_ip = (
                spec.public
                or any(n.public for n in nets)
                or str(compute.features.get("ec2.associate_public_ip_address", "yes")).lower()
                != "no"
            )
            tags = {
                "Name": f"{_slug(compute.instance_name or spec.name)}-{spec.vm_id}",
                **{k: v for k, v in compute.tags.items() if k != LABEL_OWNER},
                **self._labels(spec.infrastructure_id),
                LABEL_NODE: node,
                LABEL_SSH_USER: spec.ssh_user,
                **({LABEL_OWNER: spec.owner_mark} if spec.owner_mark else {}),
            }
            if compute.spot:
                instance_id = self._spot(ec2, params, subnet, groups, tags, what)
            else:
                nic = {
                    "DeviceIndex": 0,
                    "SubnetId": subnet,
                    "Groups": groups,
                    "AssociatePublicIpAddress": public_ip,
                    "DeleteOnTermination": True,
                }
                instance_id = ec2.run_instances(
                    **params,
                    MinCount=1,
                    MaxCount=1,
                    NetworkInterfaces=[nic],
                    TagSpecifications=self._tag_spec("instance", tags),
                )["Instances"][0]["InstanceId"]
            machine = self._until_addressed(ec2, region, instance_id, spec, what, warnings)
            if cidrs := routed_cidrs(spec, compute):  # a router of the template's networks
                routed = self._make_router(ec2, instance_id, cidrs)
                machine = dataclasses.replace(machine, warnings=machine.warnings + routed)
            return machine

    def _run_params(
        self, ec2: Any, spec: NodeSpec, compute: Compute, ami: str, flavor: Flavor
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "ImageId": ami,
            "InstanceType": flavor.name,
            "BlockDeviceMappings": self._block_devices(ec2, ami, compute),
            "UserData": spec.user_data
            or cloudinit.user_data(spec.ssh_public_key, user=spec.ssh_user),
        }
        key = compute.credentials.public_key if compute.credentials else None
        # IM's rule: a short "public key" names an existing key pair. An OpenSSH key itself
        # (an ed25519 one is short too) always goes through cloud-init instead.
        if key and len(key.strip()) < KEY_NAME_MAX and not re.match(r"(ssh|ecdsa|sk)-", key):
            params["KeyName"] = key.strip()
        if compute.availability_zone:
            params["Placement"] = {"AvailabilityZone": compute.availability_zone}
        return params

    def _spot(
        self,
        ec2: Any,
        params: dict[str, Any],
        subnet: str,
        groups: list[str],
        tags: dict[str, str],
        what: str,
    ) -> str:
        """A one-time spot request; the instance (tagged afterwards: spot instances inherit
        no tags) once the request is fulfilled."""
        spec = {k: v for k, v in params.items() if k != "UserData"}
        spec |= {
            "SubnetId": subnet,
            "SecurityGroupIds": groups,
            "UserData": base64.b64encode(params["UserData"].encode()).decode(),
        }
        request = ec2.request_spot_instances(
            InstanceCount=1,
            Type="one-time",
            LaunchSpecification=spec,
            TagSpecifications=self._tag_spec("spot-instances-request", tags),
        )["SpotInstanceRequests"][0]
        instance_id = self._wait(
            f"{what}: spot request {request['SpotInstanceRequestId']}",
            lambda: self._spot_instance(ec2, request["SpotInstanceRequestId"]),
            self.launch_timeout,
        )
        ec2.create_tags(
            Resources=[instance_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )
        return instance_id

    def _until_addressed(
        self,
        ec2: Any,
        region: str,
        instance_id: str,
        spec: NodeSpec,
        what: str,
        warnings: tuple[str, ...] = (),
    ) -> Machine:
        """Wait until the instance runs with an address: the fixed elastic IP asked for on a
        public interface, else an elastic IP for a public node EC2 gave no public address;
        then its DNS names point at the public address."""

        def ready() -> dict[str, Any] | None:
            instance = self._describe(ec2, instance_id)
            if instance is None:  # EC2 is eventually consistent: a new id may be unknown yet
                return None
            state = instance.get("State", {}).get("Name")
            if state in ("shutting-down", "terminated"):
                reason = instance.get("StateReason", {})
                message = reason.get("Message") or "the instance is gone"
                cls = QuotaExceeded if "Capacity" in reason.get("Code", "") else ProviderError
                raise cls(f"ec2: {what}: {message}")
            return instance if state == "running" and instance.get("PrivateIpAddress") else None

        instance = self._wait(what, ready, self.launch_timeout)
        fixed = _fixed_ip(spec)
        if fixed:
            warnings += self._fixed_elastic_ip(ec2, instance, fixed)
            instance = self._describe(ec2, instance_id) or instance
        if spec.public and not instance.get("PublicIpAddress"):
            warnings += self._elastic_ip(ec2, instance, spec.infrastructure_id)
            instance = self._describe(ec2, instance_id) or instance
        self._attach_volumes(ec2, instance, spec)
        machine = self._machine(region, instance)
        warnings += self._register_dns(ec2, instance, spec, machine.public_ip)
        return dataclasses.replace(machine, warnings=warnings)

    def _find(self, ec2: Any, infra: str, node: str) -> dict[str, Any] | None:
        """The node's live instance, or the instance of its fulfilled spot request."""
        filters = self._filters(infra, **{LABEL_NODE: node})
        alive = [*filters, {"Name": "instance-state-name", "Values": _ALIVE}]
        found = ec2.describe_instances(Filters=alive)["Reservations"]
        instances = [i for r in found for i in r["Instances"]]
        if instances:
            return dict(instances[0])
        open_ = [*filters, {"Name": "state", "Values": ["open", "active"]}]
        for request in ec2.describe_spot_instance_requests(Filters=open_)["SpotInstanceRequests"]:
            rid = request["SpotInstanceRequestId"]
            # an earlier launch may have stopped before fulfilment or before tagging
            fulfilled = functools.partial(self._spot_instance, ec2, rid)
            iid = self._wait(f"spot request {rid}", fulfilled, self.launch_timeout)
            instance = self._describe(ec2, iid)
            if instance and instance["State"]["Name"] in _ALIVE:
                ec2.create_tags(Resources=[iid], Tags=request.get("Tags") or [])
                return instance
        return None

    def owner_mark_of(self, provider_id: str) -> str | None:
        """The instance's owner tag (a spot request's instance: not checked, None)."""
        region, resource = _split_id(provider_id, self.region)
        if not resource.startswith("i-"):
            return None
        with _errors(f"inspect {resource}"):
            instance = self._describe(self.client(region), resource)
        return _tags(instance).get(LABEL_OWNER) if instance else None

    def inspect(self, provider_id: str) -> Machine:
        region, resource = _split_id(provider_id, self.region)
        ec2 = self.client(region)
        with _errors(f"inspect {resource}"):
            if resource.startswith("sir-"):
                try:
                    instance_id = self._spot_instance(ec2, resource)
                except QuotaExceeded:
                    return Machine(provider_id=provider_id, state=NodeState.FAILED)
                except NotFound:
                    return Machine(provider_id=provider_id, state=NodeState.OFF)
                except botocore.exceptions.ClientError as err:
                    if not _code(err).startswith("InvalidSpotInstanceRequestID"):
                        raise
                    return Machine(provider_id=provider_id, state=NodeState.OFF)
                if instance_id is None:
                    return Machine(provider_id=provider_id, state=NodeState.PENDING)
                resource = instance_id  # the VM id switches to the instance
            instance = self._describe(ec2, resource)
        if instance is None:
            return Machine(provider_id=f"{region};{resource}", state=NodeState.OFF)
        return self._machine(region, instance)

    def list_owned(self) -> list[Machine]:
        machines = []
        for region in sorted(self._regions):
            ec2 = self.client(region)
            filters = [*self._filters(), {"Name": "instance-state-name", "Values": _ALIVE}]
            with _errors(f"list instances in {region}"):
                for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
                    machines += [
                        self._machine(region, i)
                        for r in page["Reservations"]
                        for i in r["Instances"]
                    ]
        return machines

    def stop(self, provider_id: str) -> None:
        region, instance = self._instance_id(provider_id)
        with _errors(f"stop {instance}"):
            self.client(region).stop_instances(InstanceIds=[instance])

    def start(self, provider_id: str) -> None:
        region, instance = self._instance_id(provider_id)
        with _errors(f"start {instance}"):
            self.client(region).start_instances(InstanceIds=[instance])

    def reboot(self, provider_id: str) -> None:
        region, instance = self._instance_id(provider_id)
        with _errors(f"reboot {instance}"):
            self.client(region).reboot_instances(InstanceIds=[instance])

    def alter(self, provider_id: str, num_cpus: float | None, mem_size: int | None) -> None:
        """IM's resize: stop, change the instance type to the cheapest that fits, start."""
        region, instance_id = self._instance_id(provider_id)
        ec2 = self.client(region)
        what = f"resize {instance_id}"
        with _errors(what):
            instance = self._describe(ec2, instance_id)
            if instance is None:
                raise NotFound(f"ec2: {what}: no such instance")
            wanted = Compute(
                name=instance_id,
                type="tosca.nodes.Compute",
                num_cpus=num_cpus,
                mem_size=mem_size,
                cpu_arch=instance.get("Architecture"),
            )
            flavor = self.choose_flavor(wanted, region)
            if flavor.name == instance.get("InstanceType"):
                return
            was_running = instance["State"]["Name"] != "stopped"

            def stopped() -> bool | None:
                state = (self._describe(ec2, instance_id) or {}).get("State", {})
                return True if state.get("Name") == "stopped" else None

            if was_running:
                ec2.stop_instances(InstanceIds=[instance_id])
            try:
                if was_running:
                    self._wait(what, stopped, self.stop_timeout)
                ec2.modify_instance_attribute(
                    InstanceId=instance_id, InstanceType={"Value": flavor.name}
                )
            except Exception:
                if was_running:  # never leave it stopped; the resize error is the one to report
                    with suppress(
                        botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError
                    ):
                        ec2.start_instances(InstanceIds=[instance_id])
                raise
            if was_running:
                ec2.start_instances(InstanceIds=[instance_id])
