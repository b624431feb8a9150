"""The EC2 provider driving boto3 over real HTTP against moto's EC2 server (and, for the errors
moto never sends, a stand-in answering with EC2's recorded error documents)."""

from __future__ import annotations

import base64
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import botocore.exceptions
import pytest
import yaml

from orbis.model.infrastructure import Compute, Credentials, Network, PortSpec, Volume
from orbis.model.states import NodeState
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    LABEL_NODE,
    NodeSpec,
    NotFound,
    ProviderAuthError,
    ProviderError,
    QuotaExceeded,
    Transient,
)
from orbis.providers.ec2 import EC2Provider, map_error, parse_image
from orbis.testing.standins.moto import ec2_error_server

from .ec2_common import AUTH, FAST, GB, KEY, REGION, SECRET, make_provider, raw

LONG_KEY = KEY


@pytest.fixture
def provider(aws: str) -> EC2Provider:
    return make_provider("inst-test")


def spec(
    ami: str,
    *,
    infra: str | None = None,
    vm_id: int = 0,
    networks: tuple[Network, ...] = (),
    ports: tuple[PortSpec, ...] = (),
    public: bool = False,
    **compute: Any,
) -> NodeSpec:
    infra = infra or str(uuid.uuid4())
    compute.setdefault("image", f"aws://{REGION}/{ami}")
    node = Compute(name="front", type="tosca.nodes.Compute", public=public, **compute)
    return NodeSpec(
        infrastructure_id=infra,
        vm_id=vm_id,
        name="front",
        public=public,
        ports=ports,
        ssh_public_key=LONG_KEY,
        compute=node,
        networks=networks,
        ssh_user="cloudadm",
    )


def instance(provider_id: str) -> dict[str, Any]:
    region, _, iid = provider_id.partition(";")
    found = raw(region).describe_instances(InstanceIds=[iid])["Reservations"]
    return dict(found[0]["Instances"][0])


def tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def tagged(infra: str, region: str = REGION) -> dict[str, list[Any]]:
    """Every live resource carrying the infrastructure's tag."""
    c = raw(region)
    f = [{"Name": f"tag:{LABEL_INFRASTRUCTURE}", "Values": [infra]}]
    alive = [*f, {"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]}]
    return {
        "instances": [
            i for r in c.describe_instances(Filters=alive)["Reservations"] for i in r["Instances"]
        ],
        "groups": c.describe_security_groups(Filters=f)["SecurityGroups"],
        "subnets": c.describe_subnets(Filters=f)["Subnets"],
        "vpcs": c.describe_vpcs(Filters=f)["Vpcs"],
        "gateways": c.describe_internet_gateways(Filters=f)["InternetGateways"],
        "addresses": c.describe_addresses(Filters=f)["Addresses"],
    }


# -- auth, endpoint, image URLs ---------------------------------------------------------------


def test_endpoint_comes_from_boto3s_environment_variable(provider: EC2Provider, aws: str) -> None:
    assert provider.client().meta.endpoint_url == aws
    assert provider.site == "aws" and provider.name == "ec2" and provider.region == REGION


def test_region_defaults_and_unknown_region(aws: str) -> None:
    assert EC2Provider({"type": "EC2", "username": "a", "password": "b"}).region == "us-east-1"
    assert EC2Provider({"type": "EC2", "username": "a", "password": "b"}).site == "EC2"
    with pytest.raises(NotFound, match="unknown region"):
        EC2Provider({**AUTH, "region": "mars-north-1"}).client()


def test_image_url_region_falls_back_to_the_lines() -> None:
    assert parse_image("aws://us-west-2/ami-123", REGION) == ("us-west-2", "ami-123")
    assert parse_image("aws:///ami-123", REGION) == (REGION, "ami-123")
    assert parse_image("aws://ami-123", REGION) == (REGION, "ami-123")
    with pytest.raises(NotFound, match="aws://<region>/<ami>"):
        parse_image("ost://cloud.example.org/abc", REGION)


def test_image_region_picks_the_client(provider: EC2Provider, ami: str) -> None:
    with pytest.MonkeyPatch.context():
        images = raw("us-east-1").describe_images(Owners=["amazon"])["Images"]
    other = next(
        i["ImageId"]
        for i in images
        if i["Architecture"] == "x86_64" and i.get("Platform") != "windows"
    )
    machine = provider.launch(spec(ami, image=f"aws://us-east-1/{other}"))
    assert machine.provider_id.startswith("us-east-1;i-")
    assert instance(machine.provider_id)["ImageId"] == other
    assert any(m.provider_id == machine.provider_id for m in provider.list_owned())
    # after a restart, a provider searches the regions it is told about
    restarted = EC2Provider(AUTH, options={**FAST, "regions": ["us-east-1"]})
    restarted.installation = provider.installation
    assert machine.provider_id in {m.provider_id for m in restarted.list_owned()}


# -- launch -----------------------------------------------------------------------------------


def test_launch_twice_makes_one_tagged_instance(provider: EC2Provider, ami: str) -> None:
    node = spec(
        ami,
        num_cpus=1,
        mem_size=GB,
        public=True,
        instance_name="Web_Front",
        tags={"project": "demo"},
    )
    first = provider.launch(node)
    second = provider.launch(node)
    assert first.provider_id == second.provider_id
    assert first.provider_id.startswith(f"{REGION};i-")
    assert first.state == NodeState.RUNNING and first.private_ip and first.public_ip
    assert first.ssh_user == "cloudadm" and first.vm_id == 0
    assert first.infrastructure_id == node.infrastructure_id
    found = tagged(node.infrastructure_id)["instances"]
    assert len(found) == 1
    t = tags(found[0])
    assert t[LABEL_NODE] == "front.0" and t[LABEL_INSTALLATION] == "inst-test"
    assert t["Name"] == "web-front-0" and t["project"] == "demo"
    # a stopped node is started again rather than duplicated
    provider.stop(first.provider_id)
    assert provider.launch(node).state == NodeState.RUNNING
    assert len(tagged(node.infrastructure_id)["instances"]) == 1


def test_parallel_launches_of_one_node_make_one_instance(provider: EC2Provider, ami: str) -> None:
    node = spec(ami)
    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(lambda _: provider.launch(node).provider_id, range(4)))
    assert len(ids) == 1 and len(tagged(node.infrastructure_id)["instances"]) == 1


def test_cheapest_x86_type_is_chosen_unless_asked(provider: EC2Provider, ami: str) -> None:
    flavors = {f.name: f for f in provider.flavors()}
    assert flavors["t3a.micro"].price == 0.0094 and flavors["t3a.micro"].vcpus == 2
    assert flavors["t4g.micro"].arch == ("arm64",)
    assert flavors["g4dn.xlarge"].gpus == 1 and "NVIDIA" in (
        flavors["g4dn.xlarge"].gpu_vendor or ""
    )
    small = Compute(name="n", type="t", num_cpus=1, mem_size=GB)
    assert provider.choose_flavor(small).name == "t3a.micro"  # not the cheaper arm64 t4g
    arm = Compute(name="n", type="t", num_cpus=1, mem_size=GB, cpu_arch="arm64")
    assert provider.choose_flavor(arm).name == "t4g.micro"
    gpu = Compute(name="n", type="t", num_gpus=1, gpu_vendor="nvidia")
    assert provider.choose_flavor(gpu).name == "g4dn.xlarge"
    m = provider.launch(spec(ami, instance_type="m5.*"))
    assert instance(m.provider_id)["InstanceType"] == "m5.large"


def test_nothing_fits_is_a_clear_not_found(provider: EC2Provider, ami: str) -> None:
    node = spec(ami, num_cpus=100000)
    with pytest.raises(NotFound, match=r"no flavor fits front \(closest: .*vCPUs < 100000"):
        provider.launch(node)
    assert tagged(node.infrastructure_id)["instances"] == []


def test_unknown_ami_is_not_found(provider: EC2Provider) -> None:
    with pytest.raises(NotFound, match="InvalidAMIID.NotFound"):
        provider.launch(spec("ami-00000000"))


def test_security_groups_self_rules_outports_and_ssh(provider: EC2Provider, ami: str) -> None:
    nets = (
        Network("pub", public=True, outports=[PortSpec(8080), PortSpec(0, "icmp")]),
        Network("priv", outports=[PortSpec(5000, "udp", range_end=5010, remote_cidr="10.0.0.0/8")]),
    )
    node = spec(ami, networks=nets, ports=(PortSpec(443),), public=True)
    m = provider.launch(node)
    infra = node.infrastructure_id
    groups = {g["GroupName"]: g for g in tagged(infra)["groups"]}
    assert set(groups) == {f"orbis-{infra}", f"orbis-{infra}-pub", f"orbis-{infra}-priv"}
    on_nic = {g["GroupId"] for g in instance(m.provider_id)["NetworkInterfaces"][0]["Groups"]}
    assert on_nic == {g["GroupId"] for g in groups.values()}

    def rules(name: str) -> set[tuple[Any, ...]]:
        out = set()
        for p in groups[name]["IpPermissions"]:
            for pair in p.get("UserIdGroupPairs", []):
                out.add((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), pair["GroupId"]))
            for r in p.get("IpRanges", []):
                out.add((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r["CidrIp"]))
        return out

    infra_sg = groups[f"orbis-{infra}"]["GroupId"]
    assert rules(f"orbis-{infra}") == {("tcp", 0, 65535, infra_sg), ("udp", 0, 65535, infra_sg)}
    pub = rules(f"orbis-{infra}-pub")
    assert {
        ("tcp", 22, 22, "0.0.0.0/0"),
        ("tcp", 8080, 8080, "0.0.0.0/0"),
        ("tcp", 443, 443, "0.0.0.0/0"),
        ("icmp", -1, -1, "0.0.0.0/0"),
    } <= pub
    priv = rules(f"orbis-{infra}-priv")
    assert ("udp", 5000, 5010, "10.0.0.0/8") in priv
    assert not any(r[1] == 22 for r in priv)  # 22/tcp only on public (or proxied) nets
    # a second node reuses the groups
    provider.launch(spec(ami, infra=infra, vm_id=1, networks=nets, public=True))
    assert len(tagged(infra)["groups"]) == 3


def test_group_made_meanwhile_is_read_again(provider: EC2Provider, ami: str) -> None:
    node = spec(ami)
    vpc = raw().describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    made = raw().create_security_group(
        GroupName=f"orbis-{node.infrastructure_id}", Description="other", VpcId=vpc["VpcId"]
    )
    m = provider.launch(node)
    on_nic = {g["GroupId"] for g in instance(m.provider_id)["NetworkInterfaces"][0]["Groups"]}
    assert made["GroupId"] in on_nic


def test_short_public_key_is_a_key_name_long_one_goes_in_user_data(
    provider: EC2Provider, ami: str
) -> None:
    named = provider.launch(spec(ami, credentials=Credentials("cloudadm", public_key="my-key")))
    assert instance(named.provider_id)["KeyName"] == "my-key"
    keyed = provider.launch(spec(ami, credentials=Credentials("cloudadm", public_key=LONG_KEY)))
    assert "KeyName" not in instance(keyed.provider_id)
    iid = keyed.provider_id.split(";")[1]
    data = raw().describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]
    text = base64.b64decode(data["Value"]).decode()
    assert text.startswith("#cloud-config")
    user = yaml.safe_load(text)["users"][1]
    assert user["name"] == "cloudadm" and user["ssh-authorized-keys"] == [LONG_KEY]


def test_private_node_gets_a_public_ip_unless_told_not_to(provider: EC2Provider, ami: str) -> None:
    assert provider.launch(spec(ami)).public_ip  # IM's default
    off = spec(ami, features={"ec2.associate_public_ip_address": "no"})
    m = provider.launch(off)
    assert m.public_ip is None and m.private_ip
    nic = instance(m.provider_id)["NetworkInterfaces"]
    assert len(nic) == 1  # one NIC only


def test_create_yes_makes_a_tagged_vpc_gateway_route_and_subnet(
    provider: EC2Provider, ami: str
) -> None:
    nets = (Network("lan", create=True),)
    node = spec(ami, networks=nets)
    m = provider.launch(node)
    found = tagged(node.infrastructure_id)
    assert len(found["vpcs"]) == len(found["subnets"]) == len(found["gateways"]) == 1
    vpc, subnet = found["vpcs"][0]["VpcId"], found["subnets"][0]
    assert subnet["CidrBlock"] == "10.0.127.0/24" and subnet["VpcId"] == vpc
    assert tags(subnet)["orbis.network"] == "lan"
    assert found["gateways"][0]["Attachments"][0]["VpcId"] == vpc
    tables = raw().describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])
    routes = [r for t in tables["RouteTables"] for r in t["Routes"]]
    assert any(
        r.get("DestinationCidrBlock") == "0.0.0.0/0"
        and r.get("GatewayId") == found["gateways"][0]["InternetGatewayId"]
        for r in routes
    )
    assert instance(m.provider_id)["SubnetId"] == subnet["SubnetId"]
    provider.launch(spec(ami, infra=node.infrastructure_id, vm_id=1, networks=nets))
    assert len(tagged(node.infrastructure_id)["vpcs"]) == 1


def test_network_provider_id_names_vpc_and_subnet(provider: EC2Provider, ami: str) -> None:
    vpc = raw().describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    subnets = raw().describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    last = sorted(s["SubnetId"] for s in subnets["Subnets"])[-1]
    net = Network("lan", provider_id=f"{vpc['VpcId']}.{last}")
    m = provider.launch(spec(ami, networks=(net,)))
    assert instance(m.provider_id)["SubnetId"] == last
    with pytest.raises(NotFound, match="vpc-….subnet-…"):
        provider.launch(spec(ami, networks=(Network("lan", provider_id="my-network"),)))
    bad = Network("lan", provider_id=f"{vpc['VpcId']}.subnet-12345678")
    with pytest.raises(NotFound, match="InvalidSubnetID.NotFound"):
        provider.launch(spec(ami, networks=(bad,)))


def test_root_size_and_data_disks_are_mapped_at_boot(provider: EC2Provider, ami: str) -> None:
    vols = [
        Volume("disk.1", index=1, size=10 * GB, device="/dev/vdb"),
        Volume("data", index=2, size=3 * GB),
    ]
    m = provider.launch(spec(ami, disk_size=20 * GB, volumes=vols, features={"disk.0.type": "gp3"}))
    iid = m.provider_id.split(";")[1]
    found = raw().describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])
    by_device = {v["Attachments"][0]["Device"]: v for v in found["Volumes"]}
    root = instance(m.provider_id)["RootDeviceName"]
    assert by_device[root]["Size"] == 20 and by_device[root]["VolumeType"] == "gp3"
    assert by_device["/dev/sdb"]["Size"] == 10 and by_device["/dev/sdb"]["VolumeType"] == "standard"
    assert by_device["/dev/sdf"]["Size"] == 3


def test_spot_node_id_switches_to_the_instance_and_gets_an_elastic_ip(
    provider: EC2Provider, ami: str
) -> None:
    # a created subnet does not map public IPs and a spot request carries no public-IP flag:
    # the public node needs an elastic IP
    node = spec(ami, spot=True, public=True, networks=(Network("lan", create=True),))
    m = provider.launch(node)
    assert m.provider_id.startswith(f"{REGION};i-")
    requests = raw().describe_spot_instance_requests(
        Filters=[{"Name": f"tag:{LABEL_INFRASTRUCTURE}", "Values": [node.infrastructure_id]}]
    )["SpotInstanceRequests"]
    assert len(requests) == 1
    sir = requests[0]["SpotInstanceRequestId"]
    assert f"{REGION};{requests[0]['InstanceId']}" == m.provider_id
    assert provider.inspect(f"{REGION};{sir}").provider_id == m.provider_id  # the id switch
    assert tags(instance(m.provider_id))[LABEL_NODE] == "front.0"  # tagged after fulfilment
    addresses = tagged(node.infrastructure_id)["addresses"]
    assert len(addresses) == 1 and addresses[0]["PublicIp"] == m.public_ip
    assert provider.launch(node).provider_id == m.provider_id  # idempotent, still one EIP
    assert len(tagged(node.infrastructure_id)["addresses"]) == 1
    provider.destroy(f"{REGION};{sir}")
    assert provider.inspect(m.provider_id).state == NodeState.OFF
    assert tagged(node.infrastructure_id)["addresses"] == []


def test_spot_instance_left_untagged_is_adopted_and_cleaned_up(
    provider: EC2Provider, ami: str
) -> None:
    node = spec(ami, spot=True)
    labels = [{"Key": LABEL_INFRASTRUCTURE, "Value": node.infrastructure_id},
              {"Key": LABEL_INSTALLATION, "Value": "inst-test"},
              {"Key": LABEL_NODE, "Value": "front.0"}]  # fmt: skip
    # as if an earlier launch stopped between the request and tagging its instance
    request = raw().request_spot_instances(
        InstanceCount=1,
        LaunchSpecification={"ImageId": ami, "InstanceType": "t3a.micro"},
        TagSpecifications=[{"ResourceType": "spot-instances-request", "Tags": labels}],
    )["SpotInstanceRequests"][0]
    iid = raw().describe_spot_instance_requests(
        SpotInstanceRequestIds=[request["SpotInstanceRequestId"]]
    )["SpotInstanceRequests"][0]["InstanceId"]
    assert tagged(node.infrastructure_id)["instances"] == []
    assert provider.launch(node).provider_id == f"{REGION};{iid}"
    assert tags(instance(f"{REGION};{iid}"))[LABEL_NODE] == "front.0"
    raw().delete_tags(Resources=[iid])  # untagged again: cleanup still finds it
    provider.cleanup(node.infrastructure_id)
    assert instance(f"{REGION};{iid}")["State"]["Name"] == "terminated"


def test_state_table_follows_im() -> None:
    from orbis.providers.ec2 import _STATES

    assert _STATES["stopping"] == NodeState.RUNNING  # IM: still running
    assert _STATES["shutting-down"] == _STATES["terminated"] == NodeState.OFF
    assert _STATES["pending"] == NodeState.PENDING and _STATES["stopped"] == NodeState.STOPPED


def test_images_lists_the_accounts_own(provider: EC2Provider, ami: str) -> None:
    m = provider.launch(spec(ami))
    made = raw().create_image(InstanceId=m.provider_id.split(";")[1], Name="orbis-snapshot")
    found = {i.id: i for i in provider.images()}
    assert found[made["ImageId"]].url == f"aws://{REGION}/{made['ImageId']}"
    assert found[made["ImageId"]].name == "orbis-snapshot"
    assert ami not in found  # Amazon's public images are not the site catalogue


def test_stop_start_reboot_and_resize(provider: EC2Provider, ami: str) -> None:
    m = provider.launch(spec(ami, num_cpus=1, mem_size=GB))
    assert instance(m.provider_id)["InstanceType"] == "t3a.micro"
    provider.stop(m.provider_id)
    assert provider.inspect(m.provider_id).state == NodeState.STOPPED
    provider.start(m.provider_id)
    assert provider.inspect(m.provider_id).state == NodeState.RUNNING
    provider.reboot(m.provider_id)
    provider.alter(m.provider_id, 4, 16 * GB)
    after = provider.inspect(m.provider_id)
    assert instance(m.provider_id)["InstanceType"] == "t3a.xlarge"
    assert after.state == NodeState.RUNNING and after.provider_id == m.provider_id
    with pytest.raises(NotFound, match="no flavor fits"):
        provider.alter(m.provider_id, 100000, None)


def test_a_failed_resize_starts_the_instance_again(
    provider: EC2Provider, ami: str, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = provider.launch(spec(ami, num_cpus=1, mem_size=GB))
    with ec2_error_server("InvalidParameterCombination", upstream=aws,
                         actions={"ModifyInstanceAttribute"}) as url:  # fmt: skip
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        with pytest.raises(ProviderError, match="InvalidParameterCombination") as caught:
            EC2Provider(AUTH, options=FAST).alter(m.provider_id, 4, 16 * GB)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", aws)
    assert type(caught.value) is ProviderError
    after = instance(m.provider_id)
    assert after["InstanceType"] == "t3a.micro"
    assert after["State"]["Name"] in ("pending", "running")  # started again, not left stopped


def test_a_failed_spot_cancel_still_terminates_the_instance(
    provider: EC2Provider, ami: str, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = spec(ami, spot=True)
    m = provider.launch(node)
    [request] = raw().describe_spot_instance_requests(
        Filters=[{"Name": f"tag:{LABEL_INFRASTRUCTURE}", "Values": [node.infrastructure_id]}]
    )["SpotInstanceRequests"]
    sir = f"{REGION};{request['SpotInstanceRequestId']}"
    with ec2_error_server("Unavailable", upstream=aws,
                         actions={"CancelSpotInstanceRequests"}) as url:  # fmt: skip
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        # the request may still start an instance: the caller must hear of the failure
        with pytest.raises(Transient, match="Unavailable"):
            EC2Provider(AUTH, options=FAST).destroy(sir)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", aws)
    assert instance(m.provider_id)["State"]["Name"] in ("shutting-down", "terminated")
    provider.destroy(sir)  # the retry cancels the request; the instance is already gone
    assert provider.inspect(sir).state == NodeState.OFF
    left = raw().describe_spot_instance_requests(  # moto drops cancelled ones, EC2 keeps them
        Filters=[{"Name": f"tag:{LABEL_INFRASTRUCTURE}", "Values": [node.infrastructure_id]}]
    )["SpotInstanceRequests"]
    assert all(r["State"] == "cancelled" for r in left)


def test_destroy_is_quiet_when_gone(provider: EC2Provider, ami: str) -> None:
    m = provider.launch(spec(ami))
    provider.destroy(m.provider_id)
    provider.destroy(m.provider_id)
    provider.destroy(f"{REGION};i-1234567890abcdef0")
    assert provider.inspect(m.provider_id).state == NodeState.OFF
    assert provider.inspect(f"{REGION};i-1234567890abcdef0").state == NodeState.OFF


def test_cleanup_leaves_no_tagged_resource_and_spares_others(
    provider: EC2Provider, ami: str
) -> None:
    nets = (Network("pub", public=True, outports=[PortSpec(80)]), Network("lan", create=True))
    node = spec(ami, networks=nets, public=True, spot=False)
    provider.launch(node)
    provider.launch(
        spec(ami, infra=node.infrastructure_id, vm_id=1, networks=nets, spot=True, public=True)
    )
    other = spec(ami)
    kept = provider.launch(other)
    users_own = raw().allocate_address(Domain="vpc")["AllocationId"]  # not ours: never released
    found = tagged(node.infrastructure_id)
    assert len(found["instances"]) == 2 and found["addresses"] and found["vpcs"]
    provider.cleanup(node.infrastructure_id)
    assert all(not v for v in tagged(node.infrastructure_id).values()), tagged(
        node.infrastructure_id
    )
    assert provider.inspect(kept.provider_id).state == NodeState.RUNNING
    assert raw().describe_addresses(AllocationIds=[users_own])["Addresses"]
    assert node.infrastructure_id not in provider.owned_infrastructures()
    provider.cleanup(node.infrastructure_id)  # again: nothing left, no error


def test_list_owned_only_this_installations(aws: str, ami: str) -> None:
    mine, theirs = EC2Provider(AUTH, options=FAST), EC2Provider(AUTH, options=FAST)
    mine.installation, theirs.installation = "inst-a", "inst-b"
    a = mine.launch(spec(ami, vm_id=3))
    b = theirs.launch(spec(ami))
    owned = {m.provider_id: m for m in mine.list_owned()}
    assert a.provider_id in owned and b.provider_id not in owned
    assert owned[a.provider_id].vm_id == 3 and owned[a.provider_id].ssh_user == "cloudadm"
    assert all(m.infrastructure_id for m in owned.values())


def test_quotas_from_account_attributes(provider: EC2Provider) -> None:
    quotas = provider.quotas()
    assert quotas["instances"].limit == 20 and quotas["instances"].used >= 0
    assert quotas["floating_ips"].limit == 5


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("AuthFailure", ProviderAuthError),
        ("UnauthorizedOperation", ProviderAuthError),
        ("InstanceLimitExceeded", QuotaExceeded),
        ("VcpuLimitExceeded", QuotaExceeded),
        ("InsufficientInstanceCapacity", QuotaExceeded),  # sent as a 500, still a quota
        ("AddressLimitExceeded", QuotaExceeded),
        ("RequestLimitExceeded", Transient),
        ("Unavailable", Transient),
        ("InvalidParameterCombination", ProviderError),
    ],
)
def test_ec2_error_codes_become_typed_errors(
    code: str, error: type[ProviderError], monkeypatch: pytest.MonkeyPatch, ami: str
) -> None:
    with ec2_error_server(code) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        p = EC2Provider(AUTH, options=FAST)
        with pytest.raises(ProviderError) as caught:
            p.launch(spec(ami))
    assert type(caught.value) is error
    assert f"({code})" in str(caught.value)
    assert SECRET not in str(caught.value) and "session-token" not in str(caught.value)


def test_auth_failure_answered_by_moto_maps_to_auth_error(aws: str, ami: str) -> None:
    try:  # moto refuses this attribute as EC2 does, with AuthFailure
        raw().describe_image_attribute(ImageId=ami, Attribute="blockDeviceMapping")
    except botocore.exceptions.ClientError as err:
        mapped = map_error(err, "read image")
    else:
        pytest.fail("moto answered")
    assert isinstance(mapped, ProviderAuthError)
    assert "Unauthorized attempt to access restricted resource (AuthFailure)" in str(mapped)


def test_unreachable_endpoint_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    with ec2_error_server("Unavailable") as url:
        pass  # the port is closed again now
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
    with pytest.raises(Transient, match="unreachable"):
        EC2Provider(AUTH, options=FAST).quotas()


def test_an_os_request_finds_the_publishers_image(provider: EC2Provider) -> None:
    node = Compute(name="front", type="tosca.nodes.Compute", os_distribution="ubuntu")
    # moto's Canonical images: trusty and xenial (not its Ubuntu-based images of other owners)
    assert provider.image_for_os(node) in ("ami-785db401", "ami-1e749f67")
    node.os_version = "16.04"
    assert provider.image_for_os(node) == "ami-785db401"
    node.os_version = "14.04"
    assert provider.image_for_os(node) == "ami-1e749f67"
    node.os_version = "99.04"
    with pytest.raises(NotFound, match="no ubuntu 99.04 image"):
        provider.image_for_os(node)
    machine = provider.launch(spec("", image=None, os_distribution="ubuntu", os_version="16.04"))
    assert instance(machine.provider_id)["ImageId"] == "ami-785db401"
    provider.cleanup(machine.infrastructure_id or "")


# -- review findings ----------------------------------------------------------------------------


def test_an_os_request_against_an_unreachable_endpoint_is_transient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with ec2_error_server("Unavailable") as url:
        pass  # the port is closed again now
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
    node = Compute(name="front", type="tosca.nodes.Compute", os_distribution="ubuntu")
    with pytest.raises(Transient, match="unreachable"):  # not botocore's own exception
        EC2Provider(AUTH, options=FAST).image_for_os(node)


def test_a_vpc_left_without_gateway_by_a_crash_gets_one(provider: EC2Provider, ami: str) -> None:
    node = spec(ami, networks=(Network("lan", create=True),))
    infra = node.infrastructure_id
    # a previous run stopped right after create_vpc
    labels = [
        {"Key": LABEL_INFRASTRUCTURE, "Value": infra},
        {"Key": LABEL_INSTALLATION, "Value": "inst-test"},
    ]
    vpc = raw().create_vpc(
        CidrBlock="10.0.127.0/24", TagSpecifications=[{"ResourceType": "vpc", "Tags": labels}]
    )["Vpc"]["VpcId"]
    provider.launch(node)
    gateways = tagged(infra)["gateways"]
    assert len(gateways) == 1 and gateways[0]["Attachments"][0]["VpcId"] == vpc
    tables = raw().describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])
    assert any(
        r.get("DestinationCidrBlock") == "0.0.0.0/0"
        and r.get("GatewayId") == gateways[0]["InternetGatewayId"]
        for t in tables["RouteTables"]
        for r in t["Routes"]
    )
    provider.launch(spec(ami, infra=infra, vm_id=1, networks=node.networks))
    assert len(tagged(infra)["gateways"]) == 1  # and no second one later


def test_each_nodes_ports_are_opened_in_the_shared_net_group(
    provider: EC2Provider, ami: str
) -> None:
    nets = (Network("pub", public=True),)
    web = spec(ami, networks=nets, ports=(PortSpec(443),), public=True)
    infra = web.infrastructure_id
    provider.launch(web)
    provider.launch(spec(ami, infra=infra, vm_id=1, networks=nets, ports=(PortSpec(5432),)))
    group = next(g for g in tagged(infra)["groups"] if g["GroupName"] == f"orbis-{infra}-pub")
    opened = {(p["IpProtocol"], p.get("FromPort")) for p in group["IpPermissions"]}
    assert {("tcp", 22), ("tcp", 443), ("tcp", 5432)} <= opened


def test_instances_carry_the_owner_mark_and_a_template_tag_cannot_set_it(
    provider: EC2Provider, ami: str
) -> None:
    """Issue 11: an import adopts an instance only if it carries the importer's owner mark."""
    forged = spec(ami, tags={"orbis.owner": "someone-elses-mark", "team": "a"})
    machine = provider.launch(replace(forged, owner_mark="mark-of-the-owner"))
    assert tags(instance(machine.provider_id))["team"] == "a"
    assert provider.owner_mark_of(machine.provider_id) == "mark-of-the-owner"
    unmarked = provider.launch(spec(ami, tags={"orbis.owner": "someone-elses-mark"}))
    assert provider.owner_mark_of(unmarked.provider_id) is None  # the template cannot set it


# -- a router (RADL `router = 'CIDR,system'`, the overlay's site router) ------------------------


def test_a_router_forwards_and_its_subnet_routes_through_it(provider: EC2Provider,
                                                            ami: str) -> None:  # fmt: skip
    nets = (Network("priv", router="10.200.0.0/16,front"), Network("other"))
    router = provider.launch(spec(ami, networks=nets))
    instance_id = router.provider_id.split(";")[1]
    ec2 = raw()
    check = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="sourceDestCheck")
    assert check["SourceDestCheck"]["Value"] is False
    routes = [r for t in ec2.describe_route_tables()["RouteTables"] for r in t["Routes"]
              if r.get("DestinationCidrBlock") == "10.200.0.0/16"]  # fmt: skip
    assert [r.get("InstanceId") for r in routes] == [instance_id]
    # a node that routes nothing keeps the check on
    plain = provider.launch(spec(ami, vm_id=1))
    plain_id = plain.provider_id.split(";")[1]
    assert ec2.describe_instance_attribute(InstanceId=plain_id, Attribute="sourceDestCheck")[
        "SourceDestCheck"]["Value"] is True
    # removing the router removes its route (no black hole left in the VPC's table)
    provider.destroy(router.provider_id)
    left = [r for t in ec2.describe_route_tables()["RouteTables"] for r in t["Routes"]
            if r.get("DestinationCidrBlock") == "10.200.0.0/16"]  # fmt: skip
    assert left == []
