"""The EC2 provider's Route53 DNS records, fixed elastic IPs and spot zone choice, against moto's
real server (EC2 and Route53 over HTTP, reached through boto3's standard endpoint variables);
spot prices, which moto sets alike in every zone, come from a recorded DescribeSpotPriceHistory
answer served in front of moto."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest

from orbis.model.infrastructure import Compute, Network, NetworkInterface
from orbis.providers.base import LABEL_INFRASTRUCTURE, LABEL_INSTALLATION, NodeSpec
from orbis.providers.ec2 import (
    LABEL_DNS,
    TAG_VALUE_MAX,
    EC2Provider,
    _dns_tag,
    _dns_tags,
    choose_spot_zone,
)
from orbis.testing.standins.moto import (
    ec2_error_server,
    spot_price_history,
    spot_price_server,
)

from .ec2_common import REGION, raw
from .ec2_common import make_provider as provider_for

PUB = Network("pub", public=True)
LAN = Network("lan")


@pytest.fixture
def aws(aws: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Route53 too, through its own standard endpoint variable."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_ROUTE_53", aws)
    return aws


def make_provider() -> EC2Provider:
    return provider_for("inst-dns")


@pytest.fixture
def provider(aws: str) -> EC2Provider:
    return make_provider()


def ec2() -> Any:
    return raw()


def r53() -> Any:
    return boto3.client(
        "route53", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )


def spec(
    ami: str,
    *interfaces: NetworkInterface,
    infra: str | None = None,
    vm_id: int = 0,
    networks: tuple[Network, ...] = (PUB, LAN),
    **compute: Any,
) -> NodeSpec:
    node = Compute(
        name="front",
        type="tosca.nodes.Compute",
        image=f"aws://{REGION}/{ami}",
        public=True,
        interfaces=list(interfaces),
        **compute,
    )
    return NodeSpec(
        infrastructure_id=infra or str(uuid.uuid4()),
        vm_id=vm_id,
        name="front",
        public=True,
        ssh_public_key="ssh-ed25519 AAAA test",
        compute=node,
        networks=networks,
    )


def domain() -> str:
    """A domain of this test only (moto keeps one account for the whole process)."""
    return f"d{uuid.uuid4().hex[:12]}.example.org"


def zone(name: str) -> str:
    """A hosted zone made by the user (not by Orbis); its id."""
    made = r53().create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()))
    return str(made["HostedZone"]["Id"])


def zones(name: str) -> list[dict[str, Any]]:
    """The hosted zones called `name`."""
    found = r53().list_hosted_zones()["HostedZones"]
    return [z for z in found if z["Name"].rstrip(".") == name]


def records(zone_id: str) -> dict[tuple[str, str], tuple[int, list[str]]]:
    """(name, type) -> (TTL, values) of every record of the zone, SOA and NS left out."""
    found = r53().list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {
        (r["Name"].rstrip("."), r["Type"]): (
            r.get("TTL"),
            [v["Value"] for v in r["ResourceRecords"]],
        )
        for r in found
        if r["Type"] not in ("SOA", "NS")
    }


def instance(provider_id: str) -> dict[str, Any]:
    found = ec2().describe_instances(InstanceIds=[provider_id.split(";")[1]])["Reservations"]
    return dict(found[0]["Instances"][0])


def tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def subnet_in(zone_name: str) -> str:
    vpc = ec2().describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    found = ec2().describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
            {"Name": "availability-zone", "Values": [zone_name]},
        ]
    )["Subnets"]
    return str(sorted(s["SubnetId"] for s in found)[0])


# -- Route53 DNS --------------------------------------------------------------------------------


def test_public_dns_names_get_a_records_in_the_longest_zone(
    provider: EC2Provider, ami: str, aws: str
) -> None:
    assert provider.route53().meta.endpoint_url == aws  # boto3's AWS_ENDPOINT_URL_ROUTE_53
    d = domain()
    top, sub = zone(d), zone(f"sub.{d}")
    node = spec(
        ami,
        NetworkInterface("pub", dns_name=f"Web-#N#.sub.{d}", additional_dns_names=[f"www.{d}."]),
        vm_id=2,
    )
    m = provider.launch(node)
    assert m.public_ip and m.warnings == ()
    assert records(sub) == {(f"web-2.sub.{d}", "A"): (300, [m.public_ip])}
    assert records(top) == {(f"www.{d}", "A"): (300, [m.public_ip])}
    assert tags(instance(m.provider_id))[LABEL_DNS] == f"web-2.sub.{d},www.{d}"
    assert provider.launch(node).provider_id == m.provider_id  # again: the same records
    assert len(records(sub)) == len(records(top)) == 1


def test_no_record_without_a_domain_or_off_a_public_network(
    provider: EC2Provider, ami: str
) -> None:
    d = domain()
    mine = zone(d)
    m = provider.launch(
        spec(
            ami,
            NetworkInterface("pub", order=0, dns_name="lonely", additional_dns_names=["alone"]),
            NetworkInterface("lan", order=1, dns_name=f"private.{d}"),
        )
    )
    assert m.public_ip and m.warnings == ()
    assert records(mine) == {}
    assert LABEL_DNS not in tags(instance(m.provider_id))


def test_destroy_deletes_exactly_its_records_and_never_the_users_zone(
    provider: EC2Provider, ami: str
) -> None:
    d = domain()
    mine = zone(d)
    keep = {
        "Name": f"keep.{d}",
        "Type": "A",
        "TTL": 60,
        "ResourceRecords": [{"Value": "192.0.2.1"}],
    }
    r53().change_resource_record_sets(
        HostedZoneId=mine,
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": keep}]},
    )
    web = spec(ami, NetworkInterface("pub", dns_name=f"web.{d}"))
    db = spec(
        ami, NetworkInterface("pub", dns_name=f"db.{d}"), infra=web.infrastructure_id, vm_id=1
    )
    m, other = provider.launch(web), provider.launch(db)
    assert set(records(mine)) == {(f"keep.{d}", "A"), (f"web.{d}", "A"), (f"db.{d}", "A")}
    provider.destroy(m.provider_id)
    assert set(records(mine)) == {(f"keep.{d}", "A"), (f"db.{d}", "A")}
    provider.destroy(m.provider_id)  # again: already gone is fine
    # a record someone deleted already is no error either
    gone = r53().list_resource_record_sets(
        HostedZoneId=mine, StartRecordName=f"db.{d}", StartRecordType="A", MaxItems="1"
    )["ResourceRecordSets"][0]
    r53().change_resource_record_sets(
        HostedZoneId=mine,
        ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": gone}]},
    )
    provider.destroy(other.provider_id)
    assert records(mine) == {(f"keep.{d}", "A"): (60, ["192.0.2.1"])}
    r53().change_resource_record_sets(
        HostedZoneId=mine,
        ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": keep}]},
    )
    provider.cleanup(web.infrastructure_id)
    assert len(zones(d)) == 1  # the user's zone stays, even with nothing left in it


def test_missing_zone_is_made_tagged_and_removed_by_cleanup_once_empty(
    provider: EC2Provider, ami: str
) -> None:
    d = domain()
    first = spec(ami, NetworkInterface("pub", dns_name=f"web.{d}"))
    m = provider.launch(first)
    made = zones(d)
    assert len(made) == 1 and made[0]["Config"]["Comment"].startswith("Created by Orbis")
    zone_id = made[0]["Id"]
    labels = r53().list_tags_for_resource(
        ResourceType="hostedzone", ResourceId=zone_id.rpartition("/")[2]
    )["ResourceTagSet"]["Tags"]
    assert {t["Key"]: t["Value"] for t in labels} == {
        LABEL_INFRASTRUCTURE: first.infrastructure_id,
        LABEL_INSTALLATION: "inst-dns",
    }
    assert records(zone_id) == {(f"web.{d}", "A"): (300, [m.public_ip])}
    # another infrastructure's node finds the zone rather than making a second one
    second = spec(ami, NetworkInterface("pub", dns_name=f"api.{d}"))
    provider.launch(second)
    assert len(zones(d)) == 1 and set(records(zone_id)) == {(f"web.{d}", "A"), (f"api.{d}", "A")}
    provider.cleanup(first.infrastructure_id)
    assert set(records(zone_id)) == {(f"api.{d}", "A")}  # still used: kept
    provider.cleanup(second.infrastructure_id)
    assert zones(d) == []  # ours and empty: deleted


def test_cleanup_after_destroy_still_removes_the_zone_it_made(
    provider: EC2Provider, ami: str
) -> None:
    d = domain()
    node = spec(ami, NetworkInterface("pub", dns_name=f"web.{d}"))
    m = provider.launch(node)
    provider.destroy(m.provider_id)
    assert len(zones(d)) == 1 and records(zones(d)[0]["Id"]) == {}  # destroy keeps zones
    provider.cleanup(node.infrastructure_id)  # found again through the terminated instance
    assert zones(d) == []


def test_the_record_points_at_the_elastic_ip_associated_after_launch(
    provider: EC2Provider, ami: str
) -> None:
    d = domain()
    mine = zone(d)
    eip = ec2().allocate_address(Domain="vpc")["PublicIp"]
    m = provider.launch(spec(ami, NetworkInterface("pub", ip=eip, dns_name=f"web.{d}")))
    assert m.public_ip == eip
    assert records(mine) == {(f"web.{d}", "A"): (300, [eip])}


def test_route53_failure_is_a_warning(aws: str, ami: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with ec2_error_server("Unavailable") as url:
        pass  # the port is closed again now
    monkeypatch.setenv("AWS_ENDPOINT_URL_ROUTE_53", url)
    d = domain()
    m = make_provider().launch(spec(ami, NetworkInterface("pub", dns_name=f"web.{d}")))
    assert m.public_ip and len(m.warnings) == 1
    assert f"web.{d}" in m.warnings[0] and "unreachable" in m.warnings[0]
    # nothing was made: nothing for destroy to delete, so Route53 is not needed there either
    assert LABEL_DNS not in tags(instance(m.provider_id))
    make_provider().destroy(m.provider_id)
    assert instance(m.provider_id)["State"]["Name"] in ("shutting-down", "terminated")


def test_long_name_lists_are_split_over_several_tags() -> None:
    names = [f"node-{n}.{'x' * 40}.example.org" for n in range(20)]
    split = _dns_tags(names)
    assert len(split) > 1 and all(len(t["Value"]) <= TAG_VALUE_MAX for t in split)
    assert [t["Key"] for t in split[:3]] == [LABEL_DNS, f"{LABEL_DNS}.2", f"{LABEL_DNS}.3"]
    assert _dns_tag({"Tags": list(reversed(split))}) == names


# -- fixed elastic IPs --------------------------------------------------------------------------


def test_fixed_elastic_ip_is_associated_and_never_released(provider: EC2Provider, ami: str) -> None:
    users = ec2().allocate_address(Domain="vpc")
    node = spec(ami, NetworkInterface("pub", ip=users["PublicIp"]))
    m = provider.launch(node)
    assert m.public_ip == users["PublicIp"] and m.warnings == ()
    address = ec2().describe_addresses(AllocationIds=[users["AllocationId"]])["Addresses"][0]
    assert address["InstanceId"] == m.provider_id.split(";")[1]
    assert LABEL_INFRASTRUCTURE not in tags(address)  # not marked as ours
    mine = [{"Name": f"tag:{LABEL_INFRASTRUCTURE}", "Values": [node.infrastructure_id]}]
    assert ec2().describe_addresses(Filters=mine)["Addresses"] == []  # none allocated
    assert provider.launch(node).warnings == ()  # again: already there
    provider.destroy(m.provider_id)
    provider.cleanup(node.infrastructure_id)
    assert ec2().describe_addresses(AllocationIds=[users["AllocationId"]])["Addresses"]


def test_fixed_ip_not_allocated_in_the_account_is_ignored_with_a_warning(
    provider: EC2Provider, ami: str
) -> None:
    m = provider.launch(spec(ami, NetworkInterface("pub", ip="198.51.100.23")))
    assert m.public_ip and m.public_ip != "198.51.100.23"
    assert len(m.warnings) == 1
    assert "198.51.100.23" in m.warnings[0] and "ignored" in m.warnings[0]


def test_fixed_ip_on_a_private_network_is_no_elastic_ip(provider: EC2Provider, ami: str) -> None:
    users = ec2().allocate_address(Domain="vpc")
    m = provider.launch(spec(ami, NetworkInterface("lan", ip=users["PublicIp"])))
    assert m.public_ip != users["PublicIp"] and m.warnings == ()
    assert (
        not ec2()
        .describe_addresses(AllocationIds=[users["AllocationId"]])["Addresses"][0]
        .get("InstanceId")
    )


# -- spot availability zone by price -------------------------------------------------------------


def test_spot_zone_is_the_cheapest_recent_linux_price() -> None:
    history = spot_price_history()["SpotPriceHistory"]
    zones_ = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    # newest Linux/UNIX prices: a 0.041, b 0.0395 (not its older 0.015), c 0.0366
    assert choose_spot_zone(history, zones_, "m5.large") == "eu-west-1c"
    assert choose_spot_zone(history, ["eu-west-1a", "eu-west-1b"], "m5.large") == "eu-west-1b"
    assert choose_spot_zone(history, ["eu-west-1a"], "m5.large") == "eu-west-1a"
    assert choose_spot_zone(history, ["us-east-1a"], "m5.large") is None
    assert choose_spot_zone([], zones_) is None
    tie = [
        {"AvailabilityZone": z, "ProductDescription": "Linux/UNIX", "SpotPrice": "0.01",
         "Timestamp": "2024-05-14T09:00:00Z"}
        for z in ("eu-west-1b", "eu-west-1a")
    ]  # fmt: skip
    assert choose_spot_zone(tie) == "eu-west-1a"


def test_spot_node_launches_in_the_subnet_of_the_cheapest_zone(
    endpoint: str, aws: str, ami: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with spot_price_server(endpoint) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        p = make_provider()
        m = p.launch(spec(ami, spot=True, instance_type="m5.large", networks=()))
        assert m.warnings == ()
        found = instance(m.provider_id)
        assert found["SubnetId"] == subnet_in("eu-west-1c")
        assert found["Placement"]["AvailabilityZone"] == "eu-west-1c"
        # a zone the node names wins over prices
        named = p.launch(
            spec(
                ami,
                spot=True,
                instance_type="m5.large",
                networks=(),
                availability_zone="eu-west-1b",
            )
        )
        assert instance(named.provider_id)["SubnetId"] == subnet_in("eu-west-1b")


def test_spot_zone_without_a_subnet_there_keeps_the_subnet_and_warns(
    endpoint: str, aws: str, ami: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = spec(ami, spot=True, instance_type="m5.large", networks=(Network("lan", create=True),))
    # the infrastructure's VPC, made earlier with its one subnet in eu-west-1a
    labels = {LABEL_INFRASTRUCTURE: node.infrastructure_id, LABEL_INSTALLATION: "inst-dns"}
    on = [{"Key": k, "Value": v} for k, v in labels.items()]
    vpc = ec2().create_vpc(
        CidrBlock="10.0.127.0/24", TagSpecifications=[{"ResourceType": "vpc", "Tags": on}]
    )["Vpc"]["VpcId"]
    made = ec2().create_subnet(
        VpcId=vpc,
        CidrBlock="10.0.127.0/24",
        AvailabilityZone="eu-west-1a",
        TagSpecifications=[
            {"ResourceType": "subnet", "Tags": [*on, {"Key": "orbis.network", "Value": "lan"}]}
        ],
    )["Subnet"]["SubnetId"]
    with spot_price_server(endpoint) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        m = make_provider().launch(node)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", endpoint)
    assert instance(m.provider_id)["SubnetId"] == made
    assert len(m.warnings) == 1
    assert "eu-west-1c" in m.warnings[0] and f"subnet {made} (eu-west-1a) kept" in m.warnings[0]


def test_unreadable_spot_prices_keep_the_first_subnet_with_a_warning(
    endpoint: str, aws: str, ami: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = {"DescribeSpotPriceHistory"}
    with ec2_error_server("UnauthorizedOperation", upstream=endpoint, actions=refused) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        m = make_provider().launch(spec(ami, spot=True, instance_type="m5.large", networks=()))
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", endpoint)
    assert instance(m.provider_id)["SubnetId"] == subnet_in("eu-west-1a")
    assert len(m.warnings) == 1 and "UnauthorizedOperation" in m.warnings[0]
