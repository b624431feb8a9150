"""A router node on EC2 (IM's RADL `router = 'CIDR,system'`, the overlay's site routers): its
source/destination check off, so it may forward others' packets, and a route to each CIDR
through it in its subnet's route table; the routes go with the instance (destroy, cleanup).
For the overlay (`route_through`), the infrastructure's security groups also admit the routed
private ranges."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import botocore.exceptions

from orbis.model.infrastructure import Compute
from orbis.providers.base import LABEL_INFRASTRUCTURE, NodeSpec, NotFound, private_ranges
from orbis.providers.ec2.errors import _code, _errors
from orbis.providers.ec2.session import EC2Session, _tags


def routed_cidrs(spec: NodeSpec, compute: Compute) -> list[str]:
    """The CIDRs of template networks whose `router` names this node as the system."""
    found = []
    for net in spec.networks:
        cidr, _, system = (net.router or "").partition(",")
        if cidr.strip() and system.strip() in (spec.name, compute.name):
            found.append(cidr.strip())
    return found


class Routes(EC2Session):
    def route_through(self, provider_id: str, cidrs: Sequence[str],
                      drop: Sequence[str] = ()) -> tuple[str, ...]:  # fmt: skip
        """The overlay's site router (providers/base.py): SourceDestCheck off and `cidrs`
        routed through the instance in its subnet's route table."""
        region, instance_id = self._instance_id(provider_id)
        ec2 = self.client(region)
        with _errors(f"route {', '.join(cidrs)} through {instance_id}"):
            instance = self._describe(ec2, instance_id)
            if instance is None:
                raise NotFound(f"ec2: instance {instance_id} not found")
            warnings = self._make_router(ec2, instance_id, list(cidrs), list(drop))
            infra = _tags(instance).get(LABEL_INFRASTRUCTURE)
            if infra:
                self._admit(ec2, infra, instance["VpcId"], cidrs)
            return warnings

    def _admit(self, ec2: Any, infra: str, vpc: str, cidrs: Sequence[str]) -> None:
        """The infrastructure's security groups in the VPC take any traffic from the routed
        CIDRs that are private ranges (the other sites and the overlay pools), else what
        another site opens to a node of this one would stop at its group."""
        private = [c for c in private_ranges(cidrs) if not self._in_vpc(ec2, vpc, c)]
        groups = ec2.describe_security_groups(
            Filters=[*self._filters(infra), {"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
        for group in groups:
            have = {r.get("CidrIp") for p in group.get("IpPermissions") or []
                    if p.get("IpProtocol") == "-1" for r in p.get("IpRanges") or []}
            for cidr in private:
                if cidr in have:
                    continue
                try:
                    ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[
                        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": cidr}]}])  # fmt: skip
                except botocore.exceptions.ClientError as err:
                    if _code(err) != "InvalidPermission.Duplicate":
                        raise

    def _make_router(self, ec2: Any, instance_id: str, cidrs: list[str],
                     drop: list[str] | None = None) -> tuple[str, ...]:  # fmt: skip
        """Source/destination check off; each CIDR routed through the instance in the route
        table of its subnet (else its VPC's main table); a CIDR inside the VPC's own ranges is
        skipped with a warning (it would shadow the VPC's local route: moto even replaces
        that route, docs/overlay.md). The table's routes to `drop` through the instance are
        deleted (through another target they are not its). Idempotent."""
        ec2.modify_instance_attribute(InstanceId=instance_id, SourceDestCheck={"Value": False})
        found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        instance = found[0]["Instances"][0]
        table = self._route_table(ec2, instance["SubnetId"], instance["VpcId"])
        gone = {str(ipaddress.ip_network(c, strict=False)) for c in drop or []}
        if gone:
            (found,) = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"]
            for route in found.get("Routes") or []:
                if (route.get("DestinationCidrBlock") in gone
                        and route.get("InstanceId") == instance_id):  # fmt: skip
                    ec2.delete_route(RouteTableId=table,
                                     DestinationCidrBlock=route["DestinationCidrBlock"])
        warnings = []
        for cidr in cidrs:
            network = ipaddress.ip_network(cidr, strict=False)
            if self._in_vpc(ec2, instance["VpcId"], cidr):
                warnings.append(f"ec2: {cidr} not routed through {instance_id}: it is inside "
                                f"its VPC {instance['VpcId']}'s own addresses")  # fmt: skip
                continue
            try:
                ec2.create_route(RouteTableId=table, DestinationCidrBlock=str(network),
                                 InstanceId=instance_id)  # fmt: skip
            except botocore.exceptions.ClientError as err:
                if _code(err) != "RouteAlreadyExists":
                    raise
                ec2.replace_route(RouteTableId=table, DestinationCidrBlock=str(network),
                                  InstanceId=instance_id)  # fmt: skip
        return tuple(warnings)

    @staticmethod
    def _in_vpc(ec2: Any, vpc_id: str, cidr: str) -> bool:
        """Whether `cidr` lies inside one of the VPC's own ranges."""
        vpc = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
        network = ipaddress.ip_network(cidr, strict=False)
        own = [ipaddress.ip_network(b["CidrBlock"])
               for b in vpc.get("CidrBlockAssociationSet") or [{"CidrBlock": vpc["CidrBlock"]}]
               if b.get("CidrBlockState", {}).get("State", "associated") == "associated"]
        return any(network.version == o.version and network.subnet_of(o)  # type: ignore[arg-type]
                   for o in own)  # fmt: skip

    @staticmethod
    def _route_table(ec2: Any, subnet: str, vpc: str) -> str:
        tables = ec2.describe_route_tables(
            Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["RouteTables"]
        if not tables:
            tables = ec2.describe_route_tables(Filters=[
                {"Name": "vpc-id", "Values": [vpc]},
                {"Name": "association.main", "Values": ["true"]}])["RouteTables"]  # fmt: skip
        return str(tables[0]["RouteTableId"])

    @staticmethod
    def _drop_routes(ec2: Any, instance_ids: list[str]) -> None:
        """Routes through these instances (about to go): a route table is the VPC's, often
        the default VPC's, and a route to a terminated instance would stay as a black hole."""
        if not instance_ids:
            return
        # every table, scanned here: the `route.instance-id` filter is not one moto serves
        for table in ec2.describe_route_tables()["RouteTables"]:
            for route in table.get("Routes") or []:
                if route.get("InstanceId") in instance_ids and route.get("DestinationCidrBlock"):
                    ec2.delete_route(RouteTableId=table["RouteTableId"],
                                     DestinationCidrBlock=route["DestinationCidrBlock"])
