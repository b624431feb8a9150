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

The package, one module per concern (each a mixin over `session.EC2Session`):

- `session.py`: the user's boto3 session, clients, labels, instance lookups;
- `errors.py`: EC2/Route53 error codes as typed errors;
- `catalogue.py`: instance types, prices, quotas, the flavor rule;
- `images.py`: AMI URLs, images by OS, `snapshot` and `delete_image`;
- `networks.py`: VPCs, subnets, internet gateways, spot zone choice;
- `security_groups.py`: security groups and their rules;
- `routes.py`: a node that forwards for others: SourceDestCheck off, route-table entries;
- `addresses.py`: elastic IPs;
- `dns.py`: Route53 records and zones;
- `volumes.py`: block device mappings, attached volumes, `add_disk`;
- `instances.py`: launch (on demand and spot), inspect, list, stop/start/reboot, resize;
- `teardown.py`: destroy and cleanup;
- `provider.py`: `EC2Provider`, the mixins put together.
"""

# callers and tests import these from orbis.providers.ec2
from orbis.providers.ec2.catalogue import PRICES
from orbis.providers.ec2.dns import (
    DNS_TTL,
    LABEL_DNS,
    TAG_VALUE_MAX,
    ZONE_COMMENT,
    _dns_tag,
    _dns_tags,
    dns_names,
)
from orbis.providers.ec2.errors import error_class, map_error
from orbis.providers.ec2.images import OS_PUBLISHERS, parse_image
from orbis.providers.ec2.instances import KEY_NAME_MAX
from orbis.providers.ec2.networks import (
    LABEL_NETWORK,
    SPOT_HISTORY,
    SPOT_PRODUCTS,
    SUBNET_START,
    choose_spot_zone,
)
from orbis.providers.ec2.provider import EC2Provider
from orbis.providers.ec2.session import _STATES, DEFAULT_REGION, user_session
from orbis.providers.ec2.volumes import LABEL_DISK, LABEL_VOLUME_OF

__all__ = [
    "DEFAULT_REGION",
    "DNS_TTL",
    "EC2Provider",
    "KEY_NAME_MAX",
    "LABEL_DISK",
    "LABEL_DNS",
    "LABEL_NETWORK",
    "LABEL_VOLUME_OF",
    "OS_PUBLISHERS",
    "PRICES",
    "SPOT_HISTORY",
    "SPOT_PRODUCTS",
    "SUBNET_START",
    "TAG_VALUE_MAX",
    "ZONE_COMMENT",
    "_STATES",
    "_dns_tag",
    "_dns_tags",
    "choose_spot_zone",
    "dns_names",
    "error_class",
    "map_error",
    "parse_image",
    "user_session",
]
