"""DNS (IM: Route53 A records, TTL 300).

The `dns_name`s of a node's interfaces on public networks point at its public address, in the
hosted zone of their domain (made, and tagged, when the account has none). The names are kept
on the instance (`orbis.dns`, split over `orbis.dns.2`... past EC2's 256 characters) so
`destroy` and `cleanup` delete exactly those records. Route53 is reached like EC2: boto3's
`AWS_ENDPOINT_URL_ROUTE_53`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from orbis.model.hostnames import host_name
from orbis.model.infrastructure import Compute, NetworkInterface
from orbis.providers.base import LABEL_INFRASTRUCTURE, LABEL_INSTALLATION, NodeSpec, ProviderError
from orbis.providers.ec2.errors import _code, _errors
from orbis.providers.ec2.session import EC2Session, _tags

LABEL_DNS = "orbis.dns"  # on instances: the DNS names made for them, comma-separated


DNS_TTL = 300  # IM's


TAG_VALUE_MAX = 256  # EC2's limit; longer name lists go on in orbis.dns.2, orbis.dns.3...


ZONE_COMMENT = "Created by Orbis"


def _public_interfaces(spec: NodeSpec) -> list[NetworkInterface]:
    """The node's interfaces on public networks (a network the template does not define is
    public when it is called `public`, as for IM's implicit networks)."""
    if spec.compute is None:
        return []
    nets = {n.name: n for n in spec.networks}
    return [
        i
        for i in sorted(spec.compute.interfaces, key=lambda i: i.order)
        if (nets[i.network].public if i.network in nets else i.network == "public")
    ]


def dns_names(spec: NodeSpec) -> list[str]:
    """The fully qualified names (`<host>.<domain>`, no final dot) the node's public interfaces
    ask for: `dns_name` and `additional_dns_names`, `#N#` being the VM number. The host part
    follows the node's own host name rule (model/hostnames.py), so the record names the node as
    it names itself. A name without a domain makes no record."""
    names: list[str] = []
    for interface in _public_interfaces(spec):
        for wanted in [interface.dns_name, *interface.additional_dns_names]:
            text = (wanted or "").replace("#N#", str(spec.vm_id)).strip().rstrip(".")
            if "." not in text:
                continue
            one = Compute(
                name=spec.name,
                type="tosca.nodes.Compute",
                interfaces=[NetworkInterface(interface.network, dns_name=text)],
            )
            host, domain = host_name(one, spec.name, spec.vm_id)
            if f"{host}.{domain}" not in names:
                names.append(f"{host}.{domain}")
    return names


def _dns_tag(instance: Mapping[str, Any]) -> list[str]:
    """The DNS names recorded on an instance (orbis.dns, then orbis.dns.2, ...)."""
    tags = _tags(instance)

    def order(key: str) -> int:
        suffix = key.removeprefix(LABEL_DNS).lstrip(".")
        return int(suffix) if suffix.isdigit() else 1

    keys = [k for k in tags if k == LABEL_DNS or re.fullmatch(rf"{re.escape(LABEL_DNS)}\.\d+", k)]
    return [n for k in sorted(keys, key=order) for n in tags[k].split(",") if n]


def _dns_tags(names: list[str]) -> list[dict[str, str]]:
    """`names` as instance tags, split so no value passes EC2's 256 characters."""
    values: list[str] = []
    for name in names:
        if values and len(values[-1]) + 1 + len(name) <= TAG_VALUE_MAX:
            values[-1] += f",{name}"
        else:
            values.append(name[:TAG_VALUE_MAX])
    keys = [LABEL_DNS, *(f"{LABEL_DNS}.{n}" for n in range(2, len(values) + 1))]
    return [{"Key": k, "Value": v} for k, v in zip(keys, values, strict=True)]


def _same_name(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def _zone_for(zones: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The hosted zone a name belongs in: the longest zone name that is a suffix of it."""
    name = name.rstrip(".").lower()
    fits = [
        z
        for z in zones
        if name == (zone := str(z["Name"]).rstrip(".").lower()) or name.endswith(f".{zone}")
    ]
    return max(fits, key=lambda z: len(str(z["Name"]).rstrip(".")), default=None)


class Dns(EC2Session):
    """A node's Route53 records and the zones made for them."""

    def _register_dns(
        self, ec2: Any, instance: dict[str, Any], spec: NodeSpec, public_ip: str | None
    ) -> tuple[str, ...]:
        """Upsert the node's A records. The names go on the instance first, so a destroy
        deletes them even if this stops half-way. A Route53 failure is a warning (the node
        itself works), and the names it did not make are taken off the instance again, so a
        Route53 that refuses us never blocks the destroy."""
        names = dns_names(spec)
        if not names:
            return ()
        if not public_ip:
            return (f"no public IP: no DNS record for {', '.join(names)}",)
        iid = instance["InstanceId"]
        known = _dns_tag(instance)
        wanted = known + [n for n in names if n not in known]
        if wanted != known:
            ec2.create_tags(Resources=[iid], Tags=_dns_tags(wanted))
        made: list[str] = []
        try:
            with _errors(f"DNS records {', '.join(names)}"):
                self._upsert_records(names, public_ip, spec.infrastructure_id, made)
        except ProviderError as err:
            kept = known + [n for n in made if n not in known]
            if kept != wanted:
                ec2.delete_tags(
                    Resources=[iid], Tags=[{"Key": t["Key"]} for t in _dns_tags(wanted)]
                )
                if kept:
                    ec2.create_tags(Resources=[iid], Tags=_dns_tags(kept))
            return (str(err).removeprefix("ec2: "),)
        return ()

    def _upsert_records(self, names: list[str], ip: str, infra: str, made: list[str]) -> None:
        """Upsert each name's A record, adding to `made` the names with a record, or a zone
        made for them (which cleanup finds through the name)."""
        r53 = self.route53()
        with self._dns_lock:
            zones = self._zones(r53)
            for name in names:
                zone = _zone_for(zones, name)
                if zone is None:  # IM creates the zone of the domain
                    zone = self._create_zone(r53, name.partition(".")[2], infra)
                    zones.append(zone)
                    made.append(name)
                record = {
                    "Name": name,
                    "Type": "A",
                    "TTL": DNS_TTL,
                    "ResourceRecords": [{"Value": ip}],
                }
                r53.change_resource_record_sets(
                    HostedZoneId=zone["Id"],
                    ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]},
                )
                if name not in made:
                    made.append(name)

    @staticmethod
    def _zones(r53: Any) -> list[dict[str, Any]]:
        """The account's public hosted zones."""
        return [
            dict(zone)
            for page in r53.get_paginator("list_hosted_zones").paginate()
            for zone in page["HostedZones"]
            if not (zone.get("Config") or {}).get("PrivateZone")
        ]

    def _create_zone(self, r53: Any, domain: str, infra: str) -> dict[str, Any]:
        """A public zone for `domain`, tagged with our labels: only a zone so marked is ever
        deleted, and only once it holds nothing but its SOA and NS records."""
        zone = dict(
            r53.create_hosted_zone(
                Name=domain,
                CallerReference=f"orbis-{uuid.uuid4()}",
                HostedZoneConfig={
                    "Comment": f"{ZONE_COMMENT} for infrastructure {infra}",
                    "PrivateZone": False,
                },
            )["HostedZone"]
        )
        r53.change_tags_for_resource(
            ResourceType="hostedzone",
            ResourceId=str(zone["Id"]).rpartition("/")[2],
            AddTags=[{"Key": k, "Value": v} for k, v in self._labels(infra).items()],
        )
        return zone

    def _delete_records(self, names: list[str], *, drop_zones: bool) -> None:
        """Delete the A records `names` (one already gone is fine); with `drop_zones`, then the
        zones they were in that we made and that are left with only SOA and NS."""
        r53 = self.route53()
        with self._dns_lock:
            zones = self._zones(r53)
            touched: dict[str, dict[str, Any]] = {}
            for name in names:
                zone = _zone_for(zones, name)
                if zone is None:  # no zone: no record either
                    continue
                touched[str(zone["Id"])] = zone
                self._delete_record(r53, str(zone["Id"]), name)
            if drop_zones:
                for zone in touched.values():
                    self._drop_zone(r53, zone)

    @staticmethod
    def _delete_record(r53: Any, zone: str, name: str) -> None:
        """DELETE needs the record set exactly as it is: read it first."""
        for _ in range(3):  # changed between the read and the delete: read again
            found = r53.list_resource_record_sets(
                HostedZoneId=zone, StartRecordName=name, StartRecordType="A", MaxItems="1"
            )["ResourceRecordSets"]
            record = next(
                (r for r in found if r.get("Type") == "A" and _same_name(r["Name"], name)), None
            )
            if record is None:
                return
            try:
                r53.change_resource_record_sets(
                    HostedZoneId=zone,
                    ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]},
                )
                return
            except botocore.exceptions.ClientError as err:
                if _code(err) == "NoSuchHostedZone":
                    return
                if _code(err) != "InvalidChangeBatch":
                    raise
        raise ProviderError(f"ec2: DNS record {name} kept changing; not deleted")

    def _drop_zone(self, r53: Any, zone: dict[str, Any]) -> None:
        zone_id = str(zone["Id"])
        try:
            tags = r53.list_tags_for_resource(
                ResourceType="hostedzone", ResourceId=zone_id.rpartition("/")[2]
            )["ResourceTagSet"].get("Tags")
            labels = {t["Key"]: t["Value"] for t in tags or []}
            if LABEL_INFRASTRUCTURE not in labels or (
                self.installation and labels.get(LABEL_INSTALLATION) != self.installation
            ):
                return  # the user's own zone, or another installation's
            # Route53 deletes a zone holding only its SOA and NS records, else refuses
            r53.delete_hosted_zone(Id=zone_id)
        except botocore.exceptions.ClientError as err:
            # still holding records (another infrastructure's, the user's), or gone already
            if _code(err) not in ("HostedZoneNotEmpty", "NoSuchHostedZone"):
                raise
