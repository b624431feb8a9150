"""VPCs and subnets (IM's rules): the infrastructure's own VPC, internet gateway and
subnets for private `create` networks (free 10.0.N.0/24 from N = 127), a subnet the template
names, else the default VPC's; a spot node's subnet chosen by the cheapest zone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from orbis.model.infrastructure import Compute, Network
from orbis.providers.base import NodeSpec, NotFound
from orbis.providers.ec2.errors import _BOTO_ERRORS, map_error
from orbis.providers.ec2.session import EC2Session, _tags

LABEL_NETWORK = "orbis.network"  # on subnets we create: the template network's name


SUBNET_START = 127  # IM looks for a free 10.0.N.0/24 from N = 127


SPOT_PRODUCTS = ("Linux/UNIX", "Linux/UNIX (Amazon VPC)")  # IM: linux -> Linux/UNIX


SPOT_HISTORY = timedelta(hours=1)  # "recent" spot prices


def _when(stamp: Any) -> datetime:
    if isinstance(stamp, datetime):
        when = stamp
    else:
        when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def choose_spot_zone(
    history: Iterable[Mapping[str, Any]],
    zones: Collection[str] | None = None,
    instance_type: str | None = None,
) -> str | None:
    """IM's spot placement: the zone whose most recent Linux/UNIX spot price (entries as
    DescribeSpotPriceHistory gives them) is the lowest, among `zones` when given; ties go to
    the first zone by name. None when no entry qualifies."""
    latest: dict[str, tuple[datetime, float]] = {}
    for entry in history:
        zone = str(entry.get("AvailabilityZone") or "")
        if not zone or (zones is not None and zone not in zones):
            continue
        if not str(entry.get("ProductDescription") or "").startswith("Linux/UNIX"):
            continue
        if instance_type and entry.get("InstanceType") not in (None, instance_type):
            continue
        try:
            price, when = float(entry["SpotPrice"]), _when(entry.get("Timestamp"))
        except (KeyError, TypeError, ValueError):
            continue
        if zone not in latest or when > latest[zone][0]:
            latest[zone] = (when, price)
    if not latest:
        return None
    return min(latest, key=lambda z: (latest[z][1], z))


def _node_networks(spec: NodeSpec, compute: Compute) -> list[Network]:
    """The template networks the node is on (all of them when it names none)."""
    by_name = {n.name: n for n in spec.networks}
    names = [i.network for i in sorted(compute.interfaces, key=lambda i: i.order)]
    nets = [by_name[n] for n in names if n in by_name] or list(spec.networks)
    return nets or [Network(name="public" if spec.public else "private", public=spec.public)]


def _subnet_cidrs(nets: list[Network]) -> dict[str, ipaddress.IPv4Network]:
    """Each created net's CIDR: its own when fixed, else a free 10.0.N.0/24 (N from 127)."""
    fixed = {
        n.name: ipaddress.IPv4Network(n.cidr, strict=False)
        for n in nets
        if n.cidr and "*" not in n.cidr
    }
    free = (ipaddress.IPv4Network(f"10.0.{(SUBNET_START + i) % 256}.0/24") for i in range(256))
    cidrs = {}
    for net in nets:
        if net.name in fixed:
            cidrs[net.name] = fixed[net.name]
        else:
            cidrs[net.name] = next(
                c for c in free if not any(c.overlaps(f) for f in fixed.values())
            )
    return cidrs


def _span(cidrs: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The smallest network holding every subnet; at most a /16 (EC2's largest VPC)."""
    span = cidrs[0]
    while not all(c.subnet_of(span) for c in cidrs) and span.prefixlen > 16:
        span = span.supernet()
    return span


class Networks(EC2Session):
    """The VPC and subnet a node launches into."""

    def _subnet(
        self, ec2: Any, spec: NodeSpec, nets: list[Network], compute: Compute, instance_type: str
    ) -> tuple[str, str, tuple[str, ...]]:
        """(vpc, subnet, warnings) per IM: a created VPC for private `create` nets, else the
        first net with a `vpc-….subnet-…` provider id, else the default VPC's first subnet. A
        spot node with no availability zone takes the subnet of the zone with the cheapest
        spot price instead, when its VPC has one there (a subnet the template names is kept)."""
        by_price = bool(compute.spot) and not compute.availability_zone
        to_create = [n for n in spec.networks if n.create and not n.provider_id and not n.public]
        if to_create:
            with self._infra_lock(spec.infrastructure_id):
                vpc, subnet = self._created_subnet(ec2, spec.infrastructure_id, to_create, nets)
            if not by_price:
                return vpc, subnet, ()
            made = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"]
            return vpc, *self._spot_subnet(ec2, instance_type, vpc, made)
        given = next((n.provider_id for n in nets if n.provider_id and not n.public), None)
        given = given or next((n.provider_id for n in nets if n.provider_id), None)
        if given:
            vpc, _, subnet = given.partition(".")
            if not (vpc.startswith("vpc-") and subnet.startswith("subnet-")):
                raise NotFound(f"ec2: network provider_id {given!r} is not 'vpc-….subnet-…'")
            return vpc, subnet, ()
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        vpcs = (
            vpcs or ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["default"]}])["Vpcs"]
        )
        if not vpcs:
            raise NotFound("ec2: no default VPC here; give a network provider_id 'vpc-….subnet-…'")
        vpc = vpcs[0]["VpcId"]
        filters = [{"Name": "vpc-id", "Values": [vpc]}]
        if compute.availability_zone:
            filters.append({"Name": "availability-zone", "Values": [compute.availability_zone]})
        subnets = sorted(
            ec2.describe_subnets(Filters=filters)["Subnets"],
            key=lambda s: (s["AvailabilityZone"], s["SubnetId"]),
        )
        if not subnets:
            raise NotFound(f"ec2: the default VPC {vpc} has no subnet")
        if by_price:
            return vpc, *self._spot_subnet(ec2, instance_type, vpc, subnets)
        return vpc, subnets[0]["SubnetId"], ()

    def _spot_subnet(
        self, ec2: Any, instance_type: str, vpc: str, subnets: list[dict[str, Any]]
    ) -> tuple[str, tuple[str, ...]]:
        """IM's spot zone: the one with the cheapest recent Linux/UNIX price for the type. The
        subnet of that zone among `subnets`; else the first one, with a warning saying why."""
        current = subnets[0]
        kept = f"subnet {current['SubnetId']} ({current.get('AvailabilityZone')}) kept"
        try:
            zones = [
                str(z["ZoneName"])
                for z in ec2.describe_availability_zones()["AvailabilityZones"]
                if z.get("State", "available") == "available"
                and z.get("ZoneType", "availability-zone") == "availability-zone"
            ]
            history = [
                entry
                for page in ec2.get_paginator("describe_spot_price_history").paginate(
                    InstanceTypes=[instance_type],
                    ProductDescriptions=list(SPOT_PRODUCTS),
                    StartTime=datetime.now(UTC) - SPOT_HISTORY,
                )
                for entry in page["SpotPriceHistory"]
            ]
        except _BOTO_ERRORS as err:
            return current["SubnetId"], (
                f"spot zone not chosen by price ({map_error(err, 'read spot prices')}); {kept}",
            )
        zone = choose_spot_zone(history, zones, instance_type)
        if zone is None:
            region = ec2.meta.region_name
            return current["SubnetId"], (f"no recent spot price of {instance_type} in {region}; "
                                         f"{kept}",)  # fmt: skip
        chosen = next((s for s in subnets if s.get("AvailabilityZone") == zone), None)
        if chosen is None:
            return current["SubnetId"], (
                f"the cheapest zone for spot {instance_type} is {zone}, where VPC {vpc} has no "
                f"subnet for this node; {kept}",
            )
        return str(chosen["SubnetId"]), ()

    def _created_subnet(
        self, ec2: Any, infra: str, to_create: list[Network], nets: list[Network]
    ) -> tuple[str, str]:
        """The infrastructure's VPC (with an internet gateway and a default route) and one
        subnet per created net; returns the node's. Looks up before creating."""
        labels = self._labels(infra)
        found = ec2.describe_vpcs(Filters=self._filters(infra))["Vpcs"]
        cidrs = _subnet_cidrs(to_create)
        if found:
            vpc = found[0]["VpcId"]
        else:
            span = _span(list(cidrs.values()))
            vpc = ec2.create_vpc(
                CidrBlock=str(span), TagSpecifications=self._tag_spec("vpc", labels)
            )["Vpc"]["VpcId"]
        self._gateway(ec2, infra, vpc)
        existing = {
            _tags(s).get(LABEL_NETWORK): s["SubnetId"]
            for s in ec2.describe_subnets(Filters=self._filters(infra))["Subnets"]
        }
        for net in to_create:
            if net.name not in existing:
                tags = {**labels, LABEL_NETWORK: net.name}
                existing[net.name] = ec2.create_subnet(
                    VpcId=vpc,
                    CidrBlock=str(cidrs[net.name]),
                    TagSpecifications=self._tag_spec("subnet", tags),
                )["Subnet"]["SubnetId"]
        mine = next((n.name for n in nets if n.name in existing), to_create[0].name)
        return vpc, str(existing[mine])

    def _gateway(self, ec2: Any, infra: str, vpc: str) -> None:
        """The VPC's internet gateway and default routes, each step checked on its own: a run
        that stopped half-way (after create_vpc, say) must not leave the VPC without them."""
        found = ec2.describe_internet_gateways(Filters=self._filters(infra))["InternetGateways"]
        if found:
            gateway = found[0]["InternetGatewayId"]
            attached = any(a.get("VpcId") == vpc for a in found[0].get("Attachments") or [])
        else:
            gateway = ec2.create_internet_gateway(
                TagSpecifications=self._tag_spec("internet-gateway", self._labels(infra))
            )["InternetGateway"]["InternetGatewayId"]
            attached = False
        if not attached:
            ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
        tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])
        for table in tables["RouteTables"]:
            if not any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in table["Routes"]):
                ec2.create_route(
                    RouteTableId=table["RouteTableId"],
                    DestinationCidrBlock="0.0.0.0/0",
                    GatewayId=gateway,
                )
