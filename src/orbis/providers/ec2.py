"""Amazon EC2, through boto3, following what IM does (reference clouds.md §4).

Auth line: `type = EC2; username = <access key>; password = <secret>; token = <session token>`
(+ optional `region`). A line without both keys is refused: sessions have no credential chain,
so the server's own AWS credentials are never used (`user_session`). There is no endpoint in the
line: boto3's own `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_EC2` environment variables redirect it
(the tests use them to reach moto).

A machine's provider id is IM's `<region>;<instance-id>`, or `<region>;<sir-…>` while a spot
request has no instance yet. Every resource made here carries the Orbis labels as tags;
`cleanup` deletes only what carries the infrastructure's tag. Images saved by `snapshot` carry
them too but outlive `cleanup`: the service removes them (IM's auto_delete) with `delete_image`.

DNS (IM: Route53 A records, TTL 300): the `dns_name`s of a node's interfaces on public networks
point at its public address, in the hosted zone of their domain (made, and tagged, when the
account has none). The names are kept on the instance (`orbis.dns`) so `destroy` and `cleanup`
delete exactly those records. Route53 is reached like EC2: boto3's `AWS_ENDPOINT_URL_ROUTE_53`.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import ipaddress
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.session

from orbis.engine.naming import host_name
from orbis.model.infrastructure import Compute, Network, NetworkInterface, PortSpec, Volume
from orbis.model.states import NodeState
from orbis.placement.fit import explain_no_fit, smallest_fitting
from orbis.providers import cloudinit
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    LABEL_NODE,
    LABEL_OWNER,
    LABEL_SSH_USER,
    Flavor,
    Image,
    Machine,
    NodeSpec,
    NotFound,
    Provider,
    ProviderAuthError,
    ProviderError,
    QuotaExceeded,
    QuotaUse,
    Transient,
)

T = TypeVar("T")

_CATALOGUE: dict[tuple[str, str], list[Flavor]] = {}  # (endpoint, region) -> instance types
_CATALOGUE_LOCK = threading.Lock()

DEFAULT_REGION = "us-east-1"
LABEL_NETWORK = "orbis.network"  # on subnets we create: the template network's name
KEY_NAME_MAX = 128  # IM: a public_key shorter than this is the name of an existing key pair
SUBNET_START = 127  # IM looks for a free 10.0.N.0/24 from N = 127

# IM's state table: `stopping` still counts as running
_STATES = {"pending": NodeState.PENDING, "running": NodeState.RUNNING}
_STATES |= {"stopping": NodeState.RUNNING, "stopped": NodeState.STOPPED}
_STATES |= {"shutting-down": NodeState.OFF, "terminated": NodeState.OFF}
_ALIVE = ["pending", "running", "stopping", "stopped"]
# AMI states that will never become `available`
_IMAGE_FAILED = {"failed", "invalid", "deregistered", "error", "disabled"}
_IMAGE_GONE = {"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"}
_AMI_ID = re.compile(r"ami-[0-9a-f]+")

LABEL_VOLUME_OF = "orbis.instance"  # on volumes add_disk attached: the instance
LABEL_DISK = "orbis.disk"  # on volumes add_disk attached: the disk number
LABEL_DNS = "orbis.dns"  # on instances: the DNS names made for them, comma-separated
DNS_TTL = 300  # IM's
TAG_VALUE_MAX = 256  # EC2's limit; longer name lists go on in orbis.dns.2, orbis.dns.3...
ZONE_COMMENT = "Created by Orbis"
SPOT_PRODUCTS = ("Linux/UNIX", "Linux/UNIX (Amazon VPC)")  # IM: linux -> Linux/UNIX
SPOT_HISTORY = timedelta(hours=1)  # "recent" spot prices

# On-demand Linux prices (USD/h, us-east-1) of common types; EC2 has no price API without the
# Pricing service, and a flavor with no price sorts after every priced one.
PRICES = {
    "t2.nano": 0.0058, "t2.micro": 0.0116, "t2.small": 0.023, "t2.medium": 0.0464,
    "t2.large": 0.0928, "t2.xlarge": 0.1856, "t2.2xlarge": 0.3712,
    "t3.nano": 0.0052, "t3.micro": 0.0104, "t3.small": 0.0208, "t3.medium": 0.0416,
    "t3.large": 0.0832, "t3.xlarge": 0.1664, "t3.2xlarge": 0.3328,
    "t3a.nano": 0.0047, "t3a.micro": 0.0094, "t3a.small": 0.0188, "t3a.medium": 0.0376,
    "t3a.large": 0.0752, "t3a.xlarge": 0.1504, "t3a.2xlarge": 0.3008,
    "t4g.nano": 0.0042, "t4g.micro": 0.0084, "t4g.small": 0.0168, "t4g.medium": 0.0336,
    "t4g.large": 0.0672, "t4g.xlarge": 0.1344, "t4g.2xlarge": 0.2688,
    "m5.large": 0.096, "m5.xlarge": 0.192, "m5.2xlarge": 0.384, "m5.4xlarge": 0.768,
    "m6i.large": 0.096, "m6i.xlarge": 0.192, "m6i.2xlarge": 0.384, "m6i.4xlarge": 0.768,
    "c5.large": 0.085, "c5.xlarge": 0.17, "c5.2xlarge": 0.34, "c5.4xlarge": 0.68,
    "r5.large": 0.126, "r5.xlarge": 0.252, "r5.2xlarge": 0.504, "r5.4xlarge": 1.008,
    "g4dn.xlarge": 0.526, "g4dn.2xlarge": 0.752, "g5.xlarge": 1.006, "p3.2xlarge": 3.06,
}  # fmt: skip

_AUTH = {
    "AuthFailure",
    "UnauthorizedOperation",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "OptInRequired",
    "Blocked",
    "AccessDenied",  # Route53
}
_QUOTA = {
    "InstanceLimitExceeded",
    "VcpuLimitExceeded",
    "InsufficientInstanceCapacity",
    "AddressLimitExceeded",
    "InsufficientAddressCapacity",
    "MaxSpotInstanceCountExceeded",
    "VolumeLimitExceeded",
    "VpcLimitExceeded",
    "SecurityGroupLimitExceeded",
    "InsufficientFreeAddressesInSubnet",
    "SpotMaxPriceTooLow",
    "SnapshotLimitExceeded",
    "PendingSnapshotLimitExceeded",
    "ResourceLimitExceeded",
    "TooManyHostedZones",  # Route53
    "LimitsExceeded",
}
_NOT_FOUND = (
    "InvalidAMIID.",
    "InvalidSubnetID.",
    "InvalidSubnet.",
    "InvalidVpcID.",
    "InvalidKeyPair.",
    "InvalidSnapshot.",
    "InvalidVolume.",
    "InvalidGroup.NotFound",
    "InvalidInstanceID.",
    "InvalidSpotInstanceRequestID.",
    "InvalidInstanceType",
    "NoSuchHostedZone",  # Route53
)
_TRANSIENT = {
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "Unavailable",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
    "PriorRequestNotComplete",  # Route53
}
_BOTO_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
_CONNECTION = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


def error_class(code: str, status: int | None = None) -> type[ProviderError]:
    """The typed error for an EC2 error code (the code wins over the HTTP status: EC2 sends
    InsufficientInstanceCapacity as a 500, which is a quota, not a busy API)."""
    if code in _AUTH:
        return ProviderAuthError
    if code in _QUOTA:
        return QuotaExceeded
    if code.endswith(".InUse"):  # InvalidSnapshot.InUse: it exists, something still uses it
        return ProviderError
    if code.startswith(_NOT_FOUND):
        return NotFound
    if code in _TRANSIENT or (status or 0) >= 500:
        return Transient
    return ProviderError


def map_error(err: Exception, what: str) -> ProviderError:
    """A boto error as a typed error with the cloud's own message (never the credentials)."""
    if isinstance(err, botocore.exceptions.ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = str(error.get("Message") or code).rstrip(".")
        return error_class(code, status)(f"ec2: {what}: {message} ({code})")
    if isinstance(err, _CONNECTION):
        return Transient(f"ec2: {what}: EC2 endpoint unreachable ({type(err).__name__})")
    if isinstance(
        err, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        return ProviderAuthError(f"ec2: {what}: no usable credentials (username/password)")
    return ProviderError(f"ec2: {what}: {err}")


@contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except ProviderError:
        raise
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
        raise map_error(err, what) from None


def _code(err: Exception) -> str:
    if isinstance(err, botocore.exceptions.ClientError):
        return str(err.response.get("Error", {}).get("Code", ""))
    return ""


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower().replace("_", "-")).strip("-") or "node"


# who publishes each distribution's official images (AWS account ids)
OS_PUBLISHERS = {"ubuntu": "099720109477", "debian": "136693071363", "centos": "125523088429",
                 "rocky": "792107900819", "almalinux": "764336703387",
                 "fedora": "125523088429"}  # fmt: skip


def parse_image(url: str, default_region: str) -> tuple[str, str]:
    """(region, ami) of `aws://<region>/<ami>`; the region falls back to the line's."""
    scheme, _, rest = url.partition("://")
    if scheme != "aws" or not rest:
        raise NotFound(f"ec2: image {url!r} is not an aws://<region>/<ami> URL")
    region, _, ami = rest.rpartition("/")
    return region or default_region, ami


def _split_id(provider_id: str, default_region: str) -> tuple[str, str]:
    region, _, resource = provider_id.rpartition(";")
    return region or default_region, resource


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
    follows the node's own host name rule (engine/naming.py), so the record names the node as
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


def _fixed_ip(spec: NodeSpec) -> str | None:
    """The fixed address asked for on a public interface (one NIC: the first one counts)."""
    return next((i.ip.strip() for i in _public_interfaces(spec) if i.ip and i.ip.strip()), None)


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


# botocore's settings that name where credentials and profiles come from: for a user's session
# they point nowhere (no AWS_PROFILE, no ~/.aws/config, no ~/.aws/credentials)
_NO_FILES = {
    "profile": (None, None, None, None),
    "config_file": (None, None, os.devnull, None),
    "credentials_file": (None, None, os.devnull, None),
}


def user_session(access_key: str, secret_key: str, token: str | None) -> boto3.session.Session:
    """A boto3 session that signs with the user's keys and nothing else: no credential provider
    at all (so never the server's AWS_* variables, ~/.aws, SSO, credential_process, container
    or instance-metadata credentials) and no profile or config file. The endpoint variables
    (AWS_ENDPOINT_URL*) are the operator's and still apply."""
    if not access_key or not secret_key:
        raise ProviderAuthError(
            "ec2: the auth line needs username (access key id) and password (secret access "
            "key); the server's own AWS credentials are never used (environment, ~/.aws, "
            "instance profile)"
        )
    core = botocore.session.Session(session_vars=_NO_FILES)
    core.register_component("credential_provider", botocore.credentials.CredentialResolver([]))
    core.set_credentials(access_key, secret_key, token)
    return boto3.session.Session(botocore_session=core)


class EC2Provider(Provider):
    name = "ec2"

    def __init__(
        self, auth: Mapping[str, str], *, options: Mapping[str, Any] | None = None
    ) -> None:
        options = dict(options or {})
        self.site = auth.get("id") or "EC2"
        self._session = user_session(
            auth.get("username") or "", auth.get("password") or "", auth.get("token") or None
        )
        self.region = auth.get("region") or options.get("region") or DEFAULT_REGION
        self.poll_interval = float(options.get("poll_interval", 5.0))
        self.launch_timeout = float(options.get("launch_timeout", 600.0))
        self.stop_timeout = float(options.get("stop_timeout", 120.0))  # IM: resize waits 120 s
        self.cleanup_timeout = float(options.get("cleanup_timeout", 240.0))
        self._config = botocore.config.Config(
            retries={"max_attempts": int(options.get("max_attempts", 4)), "mode": "standard"},
            connect_timeout=float(options.get("connect_timeout", 10)),
            read_timeout=float(options.get("read_timeout", 60)),
        )
        self._clients: dict[str, Any] = {}
        self._route53: Any = None
        self._dns_lock = threading.Lock()  # one lookup-or-create of a hosted zone at a time
        # every region used (list_owned, cleanup), and those to search after a restart
        self._regions = {self.region, *options.get("regions", ())}
        self._lock = threading.Lock()
        self._infra_locks: dict[str, threading.Lock] = {}

    # -- connection -------------------------------------------------------------------------

    def client(self, region: str | None = None) -> Any:
        region = region or self.region
        with self._lock:  # boto3 sessions are not thread-safe; the clients they make are
            if region not in self._clients:
                known = self._session.get_available_regions("ec2")
                if known and region not in known:
                    raise NotFound(f"ec2: unknown region {region!r}")
                self._clients[region] = self._session.client(
                    "ec2", region_name=region, config=self._config
                )
                self._regions.add(region)
            return self._clients[region]

    def route53(self) -> Any:
        """The Route53 client (a global service), made as the EC2 ones are: boto3's own
        `AWS_ENDPOINT_URL_ROUTE_53` / `AWS_ENDPOINT_URL` redirect it."""
        with self._lock:
            if self._route53 is None:
                self._route53 = self._session.client(
                    "route53", region_name=self.region, config=self._config
                )
            return self._route53

    def _infra_lock(self, infrastructure_id: str) -> threading.Lock:
        with self._lock:
            return self._infra_locks.setdefault(infrastructure_id, threading.Lock())

    def _wait(self, what: str, check: Callable[[], T | None], timeout: float) -> T:
        """Poll `check` until it returns something; Transient when time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise Transient(f"ec2: {what}: still not done after {timeout:g} s")
            time.sleep(self.poll_interval)

    # -- labels -----------------------------------------------------------------------------

    def _labels(self, infrastructure_id: str) -> dict[str, str]:
        labels = {LABEL_INFRASTRUCTURE: infrastructure_id}
        if self.installation:
            labels[LABEL_INSTALLATION] = self.installation
        return labels

    @staticmethod
    def _tag_spec(kind: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
        return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]

    def _filters(self, infrastructure_id: str | None = None, **extra: str) -> list[dict[str, Any]]:
        """EC2 filters for resources this installation made (for one infrastructure)."""
        filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in extra.items()]
        if infrastructure_id:
            filters.append({"Name": f"tag:{LABEL_INFRASTRUCTURE}", "Values": [infrastructure_id]})
        else:
            filters.append({"Name": "tag-key", "Values": [LABEL_INFRASTRUCTURE]})
        if self.installation:
            filters.append({"Name": f"tag:{LABEL_INSTALLATION}", "Values": [self.installation]})
        return filters

    # -- catalogue --------------------------------------------------------------------------

    def flavors(self, region: str | None = None) -> list[Flavor]:
        """The region's instance types; cached for the process, as IM does (the catalogue is
        large and slow to read, and the same for every account)."""
        ec2 = self.client(region)
        key = (ec2.meta.endpoint_url, ec2.meta.region_name)
        with _CATALOGUE_LOCK:
            if key not in _CATALOGUE:
                flavors = []
                with _errors("list instance types"):
                    for page in ec2.get_paginator("describe_instance_types").paginate():
                        flavors += [_flavor(t) for t in page["InstanceTypes"]]
                _CATALOGUE[key] = flavors
            return _CATALOGUE[key]

    def images(self) -> list[Image]:
        with _errors("list images"):
            found = self.client().describe_images(Owners=["self"])["Images"]
        return [
            Image(
                id=i["ImageId"],
                name=i.get("Name") or i["ImageId"],
                url=f"aws://{self.region}/{i['ImageId']}",
                os_distro=i.get("Platform") or None,
            )
            for i in found
        ]

    def quotas(self) -> dict[str, QuotaUse]:
        ec2 = self.client()
        with _errors("read account attributes"):
            attrs = ec2.describe_account_attributes()["AccountAttributes"]
            limits = {
                a["AttributeName"]: a["AttributeValues"][0]["AttributeValue"]
                for a in attrs
                if a.get("AttributeValues")
            }
            quotas = {}
            if str(limits.get("max-instances", "")).isdigit():
                alive = [{"Name": "instance-state-name", "Values": ["pending", "running"]}]
                used = sum(
                    len(r["Instances"])
                    for page in ec2.get_paginator("describe_instances").paginate(Filters=alive)
                    for r in page["Reservations"]
                )
                quotas["instances"] = QuotaUse(used, float(limits["max-instances"]))
            if str(limits.get("vpc-max-elastic-ips", "")).isdigit():
                used = len(ec2.describe_addresses()["Addresses"])
                quotas["floating_ips"] = QuotaUse(used, float(limits["vpc-max-elastic-ips"]))
        return quotas

    def choose_flavor(self, compute: Compute, region: str | None = None) -> Flavor:
        """IM's rule: the cheapest type that fits; x86_64 unless the node says otherwise. EBS
        root disks have any size, so flavors have no disk minimum."""
        wanted = compute if compute.cpu_arch else dataclasses.replace(compute, cpu_arch="x86_64")
        flavors = self.flavors(region)
        chosen = smallest_fitting(flavors, wanted, min_disk_gb=0)
        if chosen is None:  # IM falls back to a t1.micro it never uses: say why instead
            raise NotFound(f"ec2: {explain_no_fit(flavors, wanted)}")
        return chosen

    # -- launch -----------------------------------------------------------------------------

    def prepare(self, infrastructure_id: str) -> None:
        """Networks and security groups need the node's networks: `launch` makes them."""

    def image_for_os(self, compute: Compute) -> str:
        """The newest public image of the node's distribution (and version) from the
        distribution's own publisher, as the template asked for an OS rather than an AMI."""
        distro = (compute.os_distribution or "").lower()
        pattern = f"*{distro}*{compute.os_version or ''}*".replace("**", "*")
        arch = compute.cpu_arch or "x86_64"
        with _errors(f"finding a {distro} image"):  # connection errors too, not only answers
            found = self.client(self.region).describe_images(
                Owners=[OS_PUBLISHERS.get(distro, "amazon")],
                Filters=[{"Name": "name", "Values": [pattern]},
                         {"Name": "architecture", "Values": [arch]},
                         {"Name": "state", "Values": ["available"]}],
            )["Images"]  # fmt: skip
        if not found:
            raise NotFound(f"ec2: no {distro} {compute.os_version or ''} image for {arch} in "
                           f"{self.region}; name one as aws://<region>/<ami>")  # fmt: skip
        return str(max(found, key=lambda i: i.get("CreationDate", ""))["ImageId"])

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
            return self._until_addressed(ec2, region, instance_id, spec, what, warnings)

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

    def _block_devices(self, ec2: Any, ami: str, compute: Compute) -> list[dict[str, Any]]:
        """The root disk (size and type) and blank or snapshot data disks, at boot."""
        image = ec2.describe_images(ImageIds=[ami])["Images"]
        if not image:
            raise NotFound(f"ec2: image {ami} not found")
        mappings = []
        root = next(
            (
                m
                for m in image[0].get("BlockDeviceMappings") or []
                if m.get("Ebs", {}).get("SnapshotId")
            ),
            None,
        )
        if root is not None:
            ebs: dict[str, Any] = {
                "SnapshotId": root["Ebs"]["SnapshotId"],
                "DeleteOnTermination": True,
                "VolumeType": str(compute.features.get("disk.0.type") or "standard"),
            }
            if compute.disk_size:
                ebs["VolumeSize"] = max(1, -(-compute.disk_size // 1024**3))
            mappings.append({"DeviceName": root["DeviceName"], "Ebs": ebs})
        letters = iter("fghijklmnop")
        for volume in sorted(compute.volumes, key=lambda v: v.index):
            if volume.volume_id and not volume.volume_id.split("/")[-1].startswith("snap-"):
                continue  # an existing volume cannot go in a launch mapping (attached later)
            # IM's device rule: /dev/sd + the last letter of the given device
            device = f"/dev/sd{volume.device[-1] if volume.device else next(letters)}"
            vol: dict[str, Any] = {
                "DeleteOnTermination": True,
                "VolumeType": volume.type or "standard",
            }
            if volume.size:
                vol["VolumeSize"] = max(1, -(-volume.size // 1024**3))
            if volume.volume_id:
                vol["SnapshotId"] = volume.volume_id.split("/")[-1]
            mappings.append({"DeviceName": device, "Ebs": vol})
        return mappings

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

    @staticmethod
    def _spot_instance(ec2: Any, request_id: str) -> str | None:
        found = ec2.describe_spot_instance_requests(SpotInstanceRequestIds=[request_id])
        if not found["SpotInstanceRequests"]:  # moto forgets cancelled requests
            raise NotFound(f"ec2: spot request {request_id} not found")
        request = found["SpotInstanceRequests"][0]
        if request.get("State") in ("failed", "cancelled", "closed") and not request.get(
            "InstanceId"
        ):
            status = request.get("Status", {})
            raise QuotaExceeded(
                f"ec2: spot request {request_id} {request['State']}: "
                f"{status.get('Message') or status.get('Code', '')}"
            )
        return request.get("InstanceId") or None

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

    def _attach_volumes(self, ec2: Any, instance: dict[str, Any], spec: NodeSpec) -> None:
        """Existing volumes (`vol-…`) named by the node: attached once it runs (IM resolves
        them but never attaches them)."""
        if spec.compute is None:
            return
        attached = {
            m.get("Ebs", {}).get("VolumeId") for m in instance.get("BlockDeviceMappings") or []
        }
        used = {m["DeviceName"][-1] for m in instance.get("BlockDeviceMappings") or []}
        letters = (c for c in "pomnlkjihgf" if c not in used)
        for volume in spec.compute.volumes:
            vol_id = (volume.volume_id or "").split("/")[-1]
            if vol_id.startswith("vol-") and vol_id not in attached:
                device = f"/dev/sd{volume.device[-1] if volume.device else next(letters)}"
                ec2.attach_volume(VolumeId=vol_id, InstanceId=instance["InstanceId"], Device=device)

    # -- networks and security groups -------------------------------------------------------

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

    def _security_groups(
        self, ec2: Any, spec: NodeSpec, vpc: str, nets: list[Network]
    ) -> list[str]:
        """The infrastructure-wide group (members reach each other) and one group per net:
        self rules, the net's outports, the node's ports on its public net, 22/tcp on public
        or proxied nets."""
        infra = spec.infrastructure_id
        groups = [self._group(ec2, infra, vpc, f"orbis-{infra}", [])]
        public_net = next((n for n in nets if n.public), None)
        for net in nets:
            ports = list(net.outports)
            if net is public_net or (public_net is None and net is nets[0]):
                ports += spec.ports
            if net.public or net.proxy_host:
                ports.append(PortSpec(22))
            groups.append(
                self._group(ec2, infra, vpc, net.sg_name or f"orbis-{infra}-{net.name}", ports)
            )
        return groups

    def _group(self, ec2: Any, infra: str, vpc: str, name: str, ports: list[PortSpec]) -> str:
        """The group `name`, made if missing. A group of this infrastructure gets the rules it
        still lacks: the nodes sharing a net's group each bring their own ports, and a run may
        have stopped between creating the group and filling it. Others' groups are left as
        they are."""

        def lookup() -> dict[str, Any] | None:
            filters = [
                {"Name": "group-name", "Values": [name]},
                {"Name": "vpc-id", "Values": [vpc]},
            ]
            found = ec2.describe_security_groups(Filters=filters)["SecurityGroups"]
            return dict(found[0]) if found else None

        with self._infra_lock(infra):
            group = lookup()
            if group is None:
                try:
                    made = ec2.create_security_group(
                        GroupName=name,
                        VpcId=vpc,
                        Description="Security group created by Orbis",
                        TagSpecifications=self._tag_spec("security-group", self._labels(infra)),
                    )["GroupId"]
                    group = {"GroupId": made, "Tags": [{"Key": LABEL_INFRASTRUCTURE,
                                                        "Value": infra}]}  # fmt: skip
                except botocore.exceptions.ClientError as err:
                    if _code(err) != "InvalidGroup.Duplicate":
                        raise
                    # another process made it just now
                    group = self._wait(f"security group {name}", lookup, self.launch_timeout)
            group_id = str(group["GroupId"])
            if _tags(group).get(LABEL_INFRASTRUCTURE) != infra:
                return group_id
            rules = [
                {
                    "IpProtocol": proto,
                    "FromPort": 0,
                    "ToPort": 65535,
                    "UserIdGroupPairs": [{"GroupId": group_id}],
                }
                for proto in ("tcp", "udp")
            ]
            rules += [_rule(p) for p in ports]
            have = group.get("IpPermissions") or []
            for rule in _dedupe(rules):
                if _covered(rule, have):
                    continue
                try:
                    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[rule])
                except botocore.exceptions.ClientError as err:
                    if _code(err) != "InvalidPermission.Duplicate":
                        raise
            return group_id

    # -- DNS (IM: Route53 A records, TTL 300) ------------------------------------------------

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

    # -- inspect and lifecycle --------------------------------------------------------------

    def _describe(self, ec2: Any, instance_id: str) -> dict[str, Any] | None:
        try:
            found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        except botocore.exceptions.ClientError as err:
            if _code(err).startswith("InvalidInstanceID."):
                return None
            raise
        instances = [i for r in found for i in r["Instances"]]
        return instances[0] if instances else None

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

    def _machine(self, region: str, instance: Mapping[str, Any]) -> Machine:
        tags = _tags(instance)
        _, _, vm_id = tags.get(LABEL_NODE, "").rpartition(".")
        return Machine(
            provider_id=f"{region};{instance['InstanceId']}",
            state=_STATES.get(instance.get("State", {}).get("Name", ""), NodeState.UNKNOWN),
            private_ip=instance.get("PrivateIpAddress") or None,
            public_ip=instance.get("PublicIpAddress") or None,
            ssh_user=tags.get(LABEL_SSH_USER, "cloudadm"),
            infrastructure_id=tags.get(LABEL_INFRASTRUCTURE),
            vm_id=int(vm_id) if vm_id.isdigit() else None,
        )

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
            try:
                ec2.terminate_instances(InstanceIds=[instance_id])
            except botocore.exceptions.ClientError as err:
                if not _code(err).startswith("InvalidInstanceID."):
                    raise
        names = _dns_tag(instance)
        if names:
            self._delete_records(names, drop_zones=False)

    def _release_addresses(self, ec2: Any, infra: str | None = None, instance: str = "") -> None:
        """Disassociate and release the elastic IPs we allocated (never a user's own)."""
        for address in ec2.describe_addresses(Filters=self._filters(infra))["Addresses"]:
            if instance and address.get("InstanceId") != instance:
                continue
            with suppress(botocore.exceptions.ClientError):  # already disassociated
                if address.get("AssociationId"):
                    ec2.disassociate_address(AssociationId=address["AssociationId"])
            ec2.release_address(AllocationId=address["AllocationId"])

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

    def _instance_id(self, provider_id: str) -> tuple[str, str]:
        """(region, instance) of a provider id; a spot request id becomes its instance."""
        region, resource = _split_id(provider_id, self.region)
        if resource.startswith("sir-"):
            with _errors(f"spot request {resource}"):
                instance = self._spot_instance(self.client(region), resource)
            if instance is None:
                raise NotFound(f"ec2: spot request {resource} has no instance yet")
            resource = instance
        return region, resource

    # -- data disks added to a running machine (IM's alterVM with a new disk.N) ----------------

    def add_disk(self, provider_id: str, volume: Volume) -> str:
        """A blank EBS volume made in the instance's zone (size rounded up to GiB, `volume.type`
        or `standard` as at launch, tagged like the instance plus LABEL_VOLUME_OF and
        LABEL_DISK) and waited for until `available`, or the existing volume `volume_id`
        (`vol-…` or aws://<region>/vol-…), which must be `available`. Either is attached at
        the device launch would give it (/dev/sd + the last letter of `volume.device`, else the
        first free of /dev/sd[f-p]) and waited for until `in-use`. A volume made here is then
        set to DeleteOnTermination, so it goes with the instance; an existing one is left to
        the user (only detached). Returns the device. A retry after a crash reuses the volume
        made for the same instance and disk."""
        region, instance_id = self._instance_id(provider_id)
        ec2 = self.client(region)
        what = f"add disk {volume.index} to {instance_id}"
        blank = not volume.volume_id
        if blank and not volume.size:
            raise ProviderError(f"ec2: {what}: the disk has neither a size nor a volume")
        with self._infra_lock(f"disks/{region}/{instance_id}"), _errors(what):
            instance = self._describe(ec2, instance_id)
            if instance is None or instance["State"]["Name"] not in _ALIVE:
                raise NotFound(f"ec2: {what}: instance {instance_id} not found")
            labels = _tags(instance)
            if LABEL_INFRASTRUCTURE not in labels or (
                self.installation and labels.get(LABEL_INSTALLATION) != self.installation
            ):  # a volume made for it would be no one's
                raise ProviderError(f"ec2: {what}: instance {instance_id} was not made by "
                                    "this Orbis")  # fmt: skip
            if volume.index in self._disk_numbers(ec2, instance):
                raise ProviderError(f"ec2: instance {instance_id} already has disk "
                                    f"{volume.index}")  # fmt: skip
            if blank:
                target = self._blank_volume(ec2, instance, volume, what)
            else:
                target = self._existing_volume(ec2, region, instance_id, volume, what)
            return self._attach_volume(ec2, instance, target, volume, what, made=blank)

    def _disk_numbers(self, ec2: Any, instance: Mapping[str, Any]) -> set[int]:
        """The disk numbers the instance has: those tagged on its attached volumes (by
        add_disk), and 1..N over its other data volumes (made at launch, in disk order)."""
        instance_id = str(instance["InstanceId"])
        attached = {"Name": "attachment.instance-id", "Values": [instance_id]}
        found = ec2.describe_volumes(Filters=[attached])["Volumes"]
        tagged = {
            str(v["VolumeId"]): _tags(v)[LABEL_DISK]
            for v in found
            if _tags(v).get(LABEL_VOLUME_OF) == instance_id and _tags(v).get(LABEL_DISK)
        }
        numbers = {int(n) for n in tagged.values() if n.isdigit()}
        root = instance.get("RootDeviceName")
        others = [
            m
            for m in instance.get("BlockDeviceMappings") or []
            if m.get("DeviceName") != root and (m.get("Ebs") or {}).get("VolumeId") not in tagged
        ]
        return numbers | set(range(1, len(others) + 1))

    def _volume_labels(self, instance: Mapping[str, Any], volume: Volume) -> dict[str, str]:
        have = _tags(instance)
        labels = {
            k: have[k] for k in (LABEL_INFRASTRUCTURE, LABEL_INSTALLATION, LABEL_NODE) if k in have
        }
        return labels | {
            LABEL_VOLUME_OF: str(instance["InstanceId"]),
            LABEL_DISK: str(volume.index),
        }

    def _blank_volume(
        self, ec2: Any, instance: Mapping[str, Any], volume: Volume, what: str
    ) -> dict[str, Any]:
        """A new volume for disk `volume.index` of the instance, `available` (or the one an
        earlier attempt made, if any); one that ends in `error` is deleted."""
        labels = self._volume_labels(instance, volume)
        mine = [{"Name": f"tag:{k}", "Values": [v]} for k, v in labels.items()]
        usable = {"Name": "status", "Values": ["creating", "available", "in-use"]}
        found = ec2.describe_volumes(Filters=[*mine, usable])["Volumes"]
        if found:
            target = dict(found[0])
        else:
            node = labels.get(LABEL_NODE, str(instance["InstanceId"]))
            owner = f"{labels.get(LABEL_INFRASTRUCTURE)}-{node}"
            zone = instance["Placement"]["AvailabilityZone"]
            target = dict(
                ec2.create_volume(
                    AvailabilityZone=zone,
                    Size=max(1, -(-(volume.size or 0) // 1024**3)),
                    VolumeType=volume.type or "standard",
                    TagSpecifications=self._tag_spec(
                        "volume", {"Name": _slug(f"orbis-{owner}-disk{volume.index}"), **labels}
                    ),
                )
            )
        vid = str(target["VolumeId"])
        if target.get("State") == "in-use":  # attached by the attempt that failed after it
            return target
        ready = self._wait_volume(ec2, vid, "available", what)
        if ready["State"] != "available":
            with suppress(*_BOTO_ERRORS):
                ec2.delete_volume(VolumeId=vid)
            raise ProviderError(f"ec2: {what}: volume {vid} went to {ready['State']}: EC2 could "
                                "not make it (deleted)")  # fmt: skip
        return ready

    def _existing_volume(
        self, ec2: Any, region: str, instance_id: str, volume: Volume, what: str
    ) -> dict[str, Any]:
        """The volume `volume_id` names, which must be `available` (and in the instance's
        region); it stays the user's: only the disk number is tagged on it."""
        url = str(volume.volume_id).strip().rstrip("/")
        where, _, vid = url.rpartition("/")
        where = where.removeprefix("aws://").strip("/")
        if where and where != region:
            raise ProviderError(f"ec2: {what}: volume {vid} is in {where}, the instance in "
                                f"{region}")  # fmt: skip
        if not vid.startswith("vol-"):
            raise NotFound(f"ec2: {what}: {url!r} is not a vol-… id or aws://<region>/vol-…")
        found = dict(ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0])
        if found.get("State") != "available":
            raise ProviderError(f"ec2: {what}: volume {vid} is {found.get('State')}, not "
                                "available")  # fmt: skip
        ec2.create_tags(
            Resources=[vid],
            Tags=[{"Key": LABEL_VOLUME_OF, "Value": instance_id},
                  {"Key": LABEL_DISK, "Value": str(volume.index)}],
        )  # fmt: skip
        return found

    @staticmethod
    def _device(instance: Mapping[str, Any], volume: Volume, what: str) -> str:
        """Launch's device rule: /dev/sd + the last letter of the given device, else the first
        of /dev/sd[f-p] the instance does not use (as sdX or xvdX)."""
        used = {
            str(m["DeviceName"]).removeprefix("/dev/").removeprefix("xvd").removeprefix("sd")
            for m in instance.get("BlockDeviceMappings") or []
            if m.get("DeviceName")
        }
        if volume.device:
            device = f"/dev/sd{volume.device[-1]}"
            if device[-1] in used:
                raise ProviderError(f"ec2: {what}: device {device} is in use")
            return device
        free = next((c for c in "fghijklmnop" if c not in used), None)
        if free is None:
            raise QuotaExceeded(f"ec2: {what}: no free device left (/dev/sd[f-p])")
        return f"/dev/sd{free}"

    def _attach_volume(
        self,
        ec2: Any,
        instance: Mapping[str, Any],
        target: Mapping[str, Any],
        volume: Volume,
        what: str,
        made: bool,
    ) -> str:
        """Attach, wait for `in-use`, and (for a volume made here) set DeleteOnTermination.
        A volume made here that will not attach is deleted (cleanup gets it otherwise)."""
        instance_id, vid = str(instance["InstanceId"]), str(target["VolumeId"])
        try:
            if target.get("State") == "available":
                device = self._device(instance, volume, what)
                ec2.attach_volume(VolumeId=vid, InstanceId=instance_id, Device=device)
            attached = self._wait_volume(ec2, vid, "in-use", what)
            if attached["State"] != "in-use":
                raise ProviderError(f"ec2: {what}: volume {vid} went to {attached['State']} "
                                    "instead of attaching")  # fmt: skip
            here = [a for a in attached.get("Attachments") or []
                    if a.get("InstanceId") == instance_id]  # fmt: skip
            if not here:
                raise ProviderError(f"ec2: {what}: volume {vid} is attached elsewhere")
            device = str(here[0].get("Device") or "")
            if made:
                ec2.modify_instance_attribute(
                    InstanceId=instance_id,
                    BlockDeviceMappings=[
                        {"DeviceName": device, "Ebs": {"DeleteOnTermination": True}}
                    ],
                )
        except Exception:
            if made:
                with suppress(*_BOTO_ERRORS):
                    if target.get("State") == "available":
                        ec2.delete_volume(VolumeId=vid)
            raise
        return device

    def _wait_volume(self, ec2: Any, vid: str, wanted: str, what: str) -> dict[str, Any]:
        """Poll until the volume is `wanted` or `error` (returned either way); gone is an
        error naming it, still elsewhere after `launch_timeout` a Transient."""

        def check() -> dict[str, Any] | None:
            try:
                found = ec2.describe_volumes(VolumeIds=[vid])["Volumes"]
            except botocore.exceptions.ClientError as err:
                if _code(err) == "InvalidVolume.NotFound":
                    raise ProviderError(f"ec2: {what}: volume {vid} vanished") from None
                raise
            if not found:
                return None  # a new id may be unknown for a while yet
            state = str(found[0].get("State"))
            attaching = any(a.get("State") != "attached" for a in found[0].get("Attachments") or [])
            if state == "error" or (state == wanted and not attaching):
                return dict(found[0])
            return None

        return self._wait(f"{what}: volume {vid} to be {wanted}", check, self.launch_timeout)

    # -- disk snapshots (IM: create_image with NoReboot, the image as aws://<region>/<ami>) -----

    def snapshot(self, provider_id: str, disk: int, name: str) -> str:
        """Save the boot disk (0) as an AMI while the node keeps running (NoReboot, as IM
        does). The instance's data volumes are left out of the image: only disk 0 was asked
        for. A data volume cannot become an image on EC2 (an AMI is a whole machine)."""
        region, instance_id = self._instance_id(provider_id)
        ec2 = self.client(region)
        what = f"snapshot of disk {disk} of {instance_id}"
        with _errors(what):
            instance = self._describe(ec2, instance_id)
            if instance is None or instance["State"]["Name"] in ("shutting-down", "terminated"):
                raise NotFound(f"ec2: {what}: instance {instance_id} not found")
            root = instance.get("RootDeviceName")
            data = sorted(
                str(m["DeviceName"])
                for m in instance.get("BlockDeviceMappings") or []
                if m.get("DeviceName") and m["DeviceName"] != root
            )
            if not 0 <= disk <= len(data):
                raise NotFound(f"ec2: instance {instance_id} has no disk {disk}")
            if disk > 0:
                raise ProviderError(
                    f"ec2: only the boot disk (0) can be saved as an image; "
                    f"disk {disk} is a data volume"
                )
            params: dict[str, Any] = {
                "InstanceId": instance_id,
                "Name": name,
                "Description": f"Boot disk of {instance_id}, saved by Orbis",
                "NoReboot": True,
            }
            if data:
                params["BlockDeviceMappings"] = [{"DeviceName": d, "NoDevice": ""} for d in data]
            infra = _tags(instance).get(LABEL_INFRASTRUCTURE)
            labels = {LABEL_INFRASTRUCTURE: infra} if infra else {}
            if self.installation:
                labels[LABEL_INSTALLATION] = self.installation
            if labels:
                params["TagSpecifications"] = [
                    *self._tag_spec("image", labels),
                    *self._tag_spec("snapshot", labels),
                ]
            ami = str(ec2.create_image(**params)["ImageId"])
            self._until_available(ec2, region, ami, f"image {ami} ({name}) of {instance_id}")
        return f"aws://{region}/{ami}"

    def _until_available(self, ec2: Any, region: str, ami: str, what: str) -> None:
        """Poll until the new image is `available`. A failed image is removed (nothing usable
        is lost); one still pending at the timeout is left, named in the error."""
        deadline = time.monotonic() + self.launch_timeout
        while True:
            # None: a new id may be unknown for a while yet (EC2 is eventually consistent)
            image = self._image(ec2, ami)
            state = str(image.get("State")) if image else "pending"
            if state == "available":
                return
            if image is not None and state in _IMAGE_FAILED:
                reason = (image.get("StateReason") or {}).get("Message") or "no reason given"
                removed = ""
                with suppress(ProviderError, *_BOTO_ERRORS):
                    self._delete_image(ec2, ami)
                    removed = "; it is removed"
                raise ProviderError(f"ec2: {what} is {state}: {reason}{removed}")
            if time.monotonic() >= deadline:
                raise ProviderError(
                    f"ec2: {what} still {state} after {self.launch_timeout:g} s; it is left "
                    f"as aws://{region}/{ami}"
                )
            time.sleep(self.poll_interval)

    def delete_image(self, url: str) -> None:
        """Deregister an image `snapshot` made, then delete the EBS snapshots behind it (EC2
        keeps, and bills, them otherwise). An image already gone is not an error; its snapshots
        left by a deletion that stopped half-way are still deleted."""
        bad = f"ec2: cannot delete image {url!r}"
        try:
            region, ami = parse_image(url, self.region)
        except NotFound:  # a bad URL, not an image already gone
            region, ami = "", ""
        if not _AMI_ID.fullmatch(ami):
            raise ProviderError(f"{bad}: not an aws://<region>/<ami-id> URL")
        try:
            ec2 = self.client(region)
        except NotFound as err:
            raise ProviderError(f"{bad}: {str(err).removeprefix('ec2: ')}") from None
        with _errors(f"delete image {ami}"):
            self._delete_image(ec2, ami)

    def _delete_image(self, ec2: Any, ami: str) -> None:
        image = self._image(ec2, ami)
        if image is None:
            snapshots = self._left_snapshots(ec2, ami)
        else:
            snapshots = [
                str(m["Ebs"]["SnapshotId"])
                for m in image.get("BlockDeviceMappings") or []
                if (m.get("Ebs") or {}).get("SnapshotId")
            ]
            if image.get("State") != "deregistered":
                try:
                    ec2.deregister_image(ImageId=ami)
                except botocore.exceptions.ClientError as err:
                    if _code(err) not in _IMAGE_GONE:
                        raise
        for snapshot in snapshots:
            self._delete_snapshot(ec2, snapshot, ami)

    @staticmethod
    def _image(ec2: Any, ami: str) -> dict[str, Any] | None:
        """The image as EC2 describes it; None once it is gone."""
        try:
            found = ec2.describe_images(ImageIds=[ami])["Images"]
        except botocore.exceptions.ClientError as err:
            if _code(err) in _IMAGE_GONE:
                return None
            raise
        return dict(found[0]) if found else None

    def _left_snapshots(self, ec2: Any, ami: str) -> list[str]:
        """Snapshots this installation tagged for an image that is gone (EC2 describes each
        as "Created by CreateImage(<instance>) for <ami>")."""
        filters = [*self._filters(), {"Name": "description", "Values": [f"* for {ami}*"]}]
        found = ec2.describe_snapshots(OwnerIds=["self"], Filters=filters)["Snapshots"]
        return [str(s["SnapshotId"]) for s in found]

    def _delete_snapshot(self, ec2: Any, snapshot: str, ami: str) -> None:
        """Delete one snapshot; one still in use (the deregistration settling) is tried again
        until `cleanup_timeout`."""

        def attempt() -> bool | None:
            try:
                ec2.delete_snapshot(SnapshotId=snapshot)
            except botocore.exceptions.ClientError as err:
                if _code(err) == "InvalidSnapshot.InUse":
                    return None
                if _code(err) != "InvalidSnapshot.NotFound":
                    raise
            return True

        self._wait(f"delete snapshot {snapshot} of image {ami}", attempt, self.cleanup_timeout)


# -- helpers ----------------------------------------------------------------------------------


def _flavor(info: Mapping[str, Any]) -> Flavor:
    gpus = (info.get("GpuInfo") or {}).get("Gpus") or []
    return Flavor(
        id=info["InstanceType"],
        name=info["InstanceType"],
        vcpus=int(info.get("VCpuInfo", {}).get("DefaultVCpus", 0)),
        ram_mb=int(info.get("MemoryInfo", {}).get("SizeInMiB", 0)),
        gpus=sum(int(g.get("Count", 0)) for g in gpus),
        gpu_vendor=gpus[0].get("Manufacturer") if gpus else None,
        gpu_model=gpus[0].get("Name") if gpus else None,
        price=PRICES.get(info["InstanceType"]),
        arch=tuple(info.get("ProcessorInfo", {}).get("SupportedArchitectures") or ()),
        extra={"instance_storage_gb": (info.get("InstanceStorageInfo") or {}).get("TotalSizeInGB")},
    )


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


def _rule(port: PortSpec) -> dict[str, Any]:
    proto = port.protocol.lower()
    cidr = port.remote_cidr or "0.0.0.0/0"
    if proto == "icmp":  # ICMP takes type/code, -1 = all
        return {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": cidr}]}
    return {
        "IpProtocol": proto,
        "FromPort": port.port,
        "ToPort": port.range_end or port.port,
        "IpRanges": [{"CidrIp": cidr}],
    }


def _covered(rule: Mapping[str, Any], permissions: list[dict[str, Any]]) -> bool:
    """Whether a group's permissions (as EC2 describes them) already grant `rule`."""
    key = (rule["IpProtocol"], rule["FromPort"], rule["ToPort"])
    for have in permissions:
        if (have.get("IpProtocol"), have.get("FromPort"), have.get("ToPort")) != key:
            continue
        cidrs = {r.get("CidrIp") for r in have.get("IpRanges") or []}
        groups = {g.get("GroupId") for g in have.get("UserIdGroupPairs") or []}
        if all(r["CidrIp"] in cidrs for r in rule.get("IpRanges") or []) and all(
            g["GroupId"] in groups for g in rule.get("UserIdGroupPairs") or []
        ):
            return True
    return False


def _dedupe(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    unique: list[dict[str, Any]] = []
    for rule in rules:
        if rule not in unique:
            unique.append(rule)
    return unique
