"""A router node on EC2 (IM's RADL `router = 'CIDR,system'`, the overlay's site router): its
source/destination check off, so it may forward others' packets, and a route to CIDR through
it in its subnet's route table; the routes go again when the infrastructure is removed."""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from orbis.model.infrastructure import Compute
from orbis.providers.base import NodeSpec
from orbis.providers.ec2.errors import _code
from orbis.providers.ec2.session import EC2Session


def routed_cidrs(spec: NodeSpec, compute: Compute) -> list[str]:
    """The CIDRs of template networks whose `router` names this node as the system."""
    found = []
    for net in spec.networks:
        cidr, _, system = (net.router or "").partition(",")
        if cidr.strip() and system.strip() in (spec.name, compute.name):
            found.append(cidr.strip())
    return found


class Routes(EC2Session):
    def _make_router(self, ec2: Any, instance_id: str, cidrs: list[str]) -> None:
        """Source/destination check off; each CIDR routed through the instance in the route
        table of its subnet (else its VPC's main table). Idempotent."""
        ec2.modify_instance_attribute(InstanceId=instance_id, SourceDestCheck={"Value": False})
        found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        instance = found[0]["Instances"][0]
        table = self._route_table(ec2, instance["SubnetId"], instance["VpcId"])
        for cidr in cidrs:
            try:
                ec2.create_route(RouteTableId=table, DestinationCidrBlock=cidr,
                                 InstanceId=instance_id)  # fmt: skip
            except botocore.exceptions.ClientError as err:
                if _code(err) != "RouteAlreadyExists":
                    raise
                ec2.replace_route(RouteTableId=table, DestinationCidrBlock=cidr,
                                  InstanceId=instance_id)  # fmt: skip

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
