"""OpenStack clouds (and EGI FedCloud and Chameleon sites, which are OpenStack) via openstacksdk.

Follows what IM does on OpenStack, so templates behave the same: Keystone URLs normalised as IM
does, flavors chosen by IM's rule (placement/fit.py) from Nova's catalogue and extra_specs, the
public network and router found when the template does not name them, a private network made
when the project has none, one security group per template network (a network's `router`
node gets none, and no port security), floating IPs reused before allocated (private-range ones
refused), and the user's key delivered by cloud-init only.

Everything Orbis makes is marked: servers carry the labels as metadata, Neutron resources as
tags (`orbis.infrastructure=<id>`...), the Cinder volumes `add_disk` makes as metadata, so
`cleanup` and `list_owned` find them without the store.
Saved disks (`snapshot`: Nova's createImage for disk 0, Cinder's upload for a data volume) are
Glance images carrying the labels as properties; `cleanup` leaves them (IM's auto_delete is the
service's call) and `delete_image` removes only those.
On Chameleon, `reservation = host|instance` in the auth line launches into a Blazar lease
(providers/blazar.py).

The package, one module per concern (each a mixin over `session.OpenStackSession`):

- `session.py`: Keystone auth, the connection, typed errors, labels, server lookups;
- `catalogue.py`: flavors (extra_specs), quotas, the flavor rule;
- `images.py`: image references, `snapshot` and `delete_image`;
- `volumes.py`: the boot-time block device mapping, `add_disk`, volume deletion;
- `networks.py`: the site's networks, the node's network plan, created networks and routers;
- `security_groups.py`: security groups and their rules;
- `routing.py`: a node that forwards for others: port security off, subnet host routes;
- `addresses.py`: floating IPs;
- `leases.py`: Blazar leases (Chameleon);
- `instances.py`: launch, inspect, list, stop/start/reboot, resize, the key pair;
- `teardown.py`: destroy, cleanup, owned_infrastructures;
- `provider.py`: `OpenStackProvider`, the mixins put together.
"""

# callers and tests import these from orbis.providers.openstack
from orbis.providers.openstack.addresses import FIP_ATTEMPTS
from orbis.providers.openstack.instances import keypair_name
from orbis.providers.openstack.networks import DEFAULT_CIDR
from orbis.providers.openstack.provider import OpenStackProvider
from orbis.providers.openstack.security_groups import SG_DESCRIPTION
from orbis.providers.openstack.session import _typed, is_private, keystone_base
from orbis.providers.openstack.volumes import DISK_LABEL, DISKS_LABEL, SERVER_LABEL

__all__ = [
    "DEFAULT_CIDR",
    "DISKS_LABEL",
    "DISK_LABEL",
    "FIP_ATTEMPTS",
    "OpenStackProvider",
    "SERVER_LABEL",
    "SG_DESCRIPTION",
    "_typed",
    "is_private",
    "keypair_name",
    "keystone_base",
]
