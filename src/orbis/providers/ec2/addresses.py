"""Elastic IPs: the fixed one a public interface asks for (the account's own, never
released), one allocated (and tagged) for a public node EC2 gave no public address, and the
release of those we allocated.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import botocore.exceptions

from orbis.providers.base import LABEL_NODE, NodeSpec
from orbis.providers.ec2.dns import _public_interfaces
from orbis.providers.ec2.errors import _code, map_error
from orbis.providers.ec2.session import EC2Session, _tags


def _fixed_ip(spec: NodeSpec) -> str | None:
    """The fixed address asked for on a public interface (one NIC: the first one counts)."""
    return next((i.ip.strip() for i in _public_interfaces(spec) if i.ip and i.ip.strip()), None)


class Addresses(EC2Session):
    """Elastic IPs associated, allocated and released."""

    def _fixed_elastic_ip(self, ec2: Any, instance: dict[str, Any], ip: str) -> tuple[str, ...]:
        """Associate the account's elastic IP `ip` (IM: a fixed IP must already be allocated;
        otherwise it is ignored, here with a warning). It is never tagged: not ours, so never
        released."""
        iid = instance["InstanceId"]
        try:
            found = ec2.describe_addresses(PublicIps=[ip])["Addresses"]
        except botocore.exceptions.ClientError as err:
            if not _code(err).startswith(("InvalidAddress", "InvalidParameterValue")):
                raise
            found = []
        address = next((a for a in found if a.get("AllocationId")), None)
        if address is None:
            return (
                f"fixed IP {ip} is not an elastic IP allocated in this account "
                f"({ec2.meta.region_name}): ignored",
            )
        if address.get("InstanceId") == iid:
            return ()
        try:  # one held by another instance is not taken from it
            ec2.associate_address(InstanceId=iid, AllocationId=address["AllocationId"])
        except botocore.exceptions.ClientError as err:
            return (f"fixed IP {ip} not associated: {map_error(err, 'associate address')}",)
        return ()

    def _elastic_ip(self, ec2: Any, instance: dict[str, Any], infra: str) -> tuple[str, ...]:
        """One EIP per instance, tagged so only the ones we allocated are ever released."""
        iid = instance["InstanceId"]
        if ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [iid]}])["Addresses"]:
            return ()
        tags = {**self._labels(infra), LABEL_NODE: _tags(instance).get(LABEL_NODE, "")}
        try:
            address = ec2.allocate_address(
                Domain="vpc", TagSpecifications=self._tag_spec("elastic-ip", tags)
            )
        except botocore.exceptions.ClientError as err:
            # the node still works through its private address (e.g. behind a proxy host)
            return (f"no elastic IP: {map_error(err, 'allocate address')}",)
        try:
            ec2.associate_address(InstanceId=iid, AllocationId=address["AllocationId"])
        except botocore.exceptions.ClientError as err:
            with suppress(botocore.exceptions.ClientError):
                ec2.release_address(AllocationId=address["AllocationId"])
            return (f"no elastic IP: {map_error(err, 'associate address')}",)
        return ()

    def _release_addresses(self, ec2: Any, infra: str | None = None, instance: str = "") -> None:
        """Disassociate and release the elastic IPs we allocated (never a user's own)."""
        for address in ec2.describe_addresses(Filters=self._filters(infra))["Addresses"]:
            if instance and address.get("InstanceId") != instance:
                continue
            with suppress(botocore.exceptions.ClientError):  # already disassociated
                if address.get("AssociationId"):
                    ec2.disassociate_address(AssociationId=address["AssociationId"])
            ec2.release_address(AllocationId=address["AllocationId"])
