"""Destroying a node (its instance or spot request, elastic IPs and DNS records) and
cleaning up an infrastructure: every region's tagged resources, shared ones last, retried
while still in use; then the DNS records and the zones made for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions

from orbis.providers.base import NotFound, QuotaExceeded
from orbis.providers.ec2.addresses import Addresses
from orbis.providers.ec2.dns import Dns, _dns_tag
from orbis.providers.ec2.errors import _code, _errors
from orbis.providers.ec2.routes import Routes
from orbis.providers.ec2.session import _ALIVE, _split_id


class Teardown(Dns, Addresses, Routes):
    """destroy and cleanup."""

    def destroy(self, provider_id: str) -> None:
        region, resource = _split_id(provider_id, self.region)
        ec2 = self.client(region)
        with _errors(f"destroy {resource}"):
            if not resource.startswith("sir-"):
                self._terminate(ec2, resource)
                return
            # the instance is read before the cancel (moto, unlike EC2, forgets a cancelled
            # request) and after it (a request fulfilled meanwhile names its instance only then)
            before = self._spot_target(ec2, resource)
            cancel_error = None
            try:
                ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=[resource])
            except botocore.exceptions.ClientError as err:
                if not _code(err).startswith("InvalidSpotInstanceRequestID"):
                    cancel_error = err  # the instance goes anyway; the failure is told after
            for instance_id in {before, self._spot_target(ec2, resource)} - {None}:
                self._terminate(ec2, str(instance_id))
            if cancel_error is not None:  # still open: it may yet start an instance
                raise cancel_error

    def _spot_target(self, ec2: Any, request_id: str) -> str | None:
        """The spot request's instance; None when it has none or the request is gone."""
        try:
            return self._spot_instance(ec2, request_id)
        except (QuotaExceeded, NotFound):
            return None
        except botocore.exceptions.ClientError as err:
            if _code(err).startswith("InvalidSpotInstanceRequestID"):
                return None
            raise

    def _terminate(self, ec2: Any, instance_id: str) -> None:
        """Terminate the instance, then delete its DNS records: a terminated instance still
        names them for a while, so a destroy that failed at that step is finished by the next
        one."""
        instance = self._describe(ec2, instance_id)
        if instance is None:
            return  # already gone
        if instance["State"]["Name"] != "terminated":
            self._release_addresses(ec2, instance=instance_id)
            self._drop_routes(ec2, [instance_id])
            try:
                ec2.terminate_instances(InstanceIds=[instance_id])
            except botocore.exceptions.ClientError as err:
                if not _code(err).startswith("InvalidInstanceID."):
                    raise
        names = _dns_tag(instance)
        if names:
            self._delete_records(names, drop_zones=False)

    def cleanup(self, infrastructure_id: str) -> None:
        """Every region's resources, then the DNS records of every instance (terminated ones
        too: a `destroy` may have removed their records already) and the zones we made for
        them once empty."""
        names: list[str] = []
        for region in sorted(self._regions):
            ec2 = self.client(region)
            with _errors(f"cleanup of {infrastructure_id} in {region}"):
                pages = ec2.get_paginator("describe_instances").paginate(
                    Filters=self._filters(infrastructure_id)
                )
                names += [
                    n
                    for page in pages
                    for r in page["Reservations"]
                    for i in r["Instances"]
                    for n in _dns_tag(i)
                ]
                self._cleanup(ec2, infrastructure_id)
        if names:
            with _errors(f"cleanup of the DNS records of {infrastructure_id}"):
                self._delete_records(list(dict.fromkeys(names)), drop_zones=True)

    def _cleanup(self, ec2: Any, infra: str) -> None:
        """Machines first, then addresses, groups, subnets, the gateway and the VPC (shared
        resources last); resources still in use are retried until `cleanup_timeout`."""
        mine = self._filters(infra)
        requests = ec2.describe_spot_instance_requests(Filters=mine)["SpotInstanceRequests"]
        if requests:
            ec2.cancel_spot_instance_requests(
                SpotInstanceRequestIds=[r["SpotInstanceRequestId"] for r in requests]
            )
        self._release_addresses(ec2, infra)
        states = {"Name": "instance-state-name", "Values": [*_ALIVE, "shutting-down"]}
        # a spot instance is tagged only after fulfilment: find it through its request too
        spot = [r["InstanceId"] for r in requests if r.get("InstanceId")]
        queries = [[*mine, states]]
        if spot:
            queries.append([{"Name": "instance-id", "Values": spot}, states])

        def live() -> list[str]:
            found = [r for q in queries for r in ec2.describe_instances(Filters=q)["Reservations"]]
            return sorted({i["InstanceId"] for r in found for i in r["Instances"]})

        ids = live()
        self._drop_routes(ec2, ids)
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
            self._wait(
                f"terminate instances of {infra}",
                lambda: None if live() else True,
                self.cleanup_timeout,
            )
        groups = ec2.describe_security_groups(Filters=mine)["SecurityGroups"]
        for group in groups:  # rules may name other groups: empty them all first
            if group.get("IpPermissions"):
                ec2.revoke_security_group_ingress(
                    GroupId=group["GroupId"], IpPermissions=group["IpPermissions"]
                )
        for group in groups:
            self._retry(ec2.delete_security_group, GroupId=group["GroupId"])
        for subnet in ec2.describe_subnets(Filters=mine)["Subnets"]:
            self._retry(ec2.delete_subnet, SubnetId=subnet["SubnetId"])
        for gateway in ec2.describe_internet_gateways(Filters=mine)["InternetGateways"]:
            for attachment in gateway.get("Attachments") or []:
                ec2.detach_internet_gateway(
                    InternetGatewayId=gateway["InternetGatewayId"], VpcId=attachment["VpcId"]
                )
            ec2.delete_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"])
        for vpc in ec2.describe_vpcs(Filters=mine)["Vpcs"]:
            self._retry(ec2.delete_vpc, VpcId=vpc["VpcId"])
        # volumes add_disk made and never attached (or left by a crash before DeleteOnTermination)
        loose = [*mine, {"Name": "status", "Values": ["available"]}]
        for volume in ec2.describe_volumes(Filters=loose)["Volumes"]:
            self._retry(ec2.delete_volume, VolumeId=volume["VolumeId"])

    def _retry(self, delete: Callable[..., Any], **args: str) -> None:
        """Deletes refused while something still uses the resource are tried again."""

        def attempt() -> bool | None:
            try:
                delete(**args)
            except botocore.exceptions.ClientError as err:
                if _code(err) == "DependencyViolation":
                    return None
                if not _code(err).endswith(".NotFound"):
                    raise
            return True

        self._wait(f"delete {args}", attempt, self.cleanup_timeout)
