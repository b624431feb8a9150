"""A stand-in OpenStack cloud (Keystone, Nova, Neutron, Glance, Cinder, Blazar) on 127.0.0.1;
with `boot=`, its servers are real system containers (see boot.py)."""

from orbis.testing.standins.openstack.common import (
    ACCESS_TOKEN,
    APPCRED_ID,
    DOMAIN,
    FIXTURES,
    IDP,
    PASSWORD,
    PROTOCOL,
    USER,
    Reply,
)
from orbis.testing.standins.openstack.standin import OpenStackStandin

__all__ = ["ACCESS_TOKEN", "APPCRED_ID", "DOMAIN", "FIXTURES", "IDP", "PASSWORD", "PROTOCOL",
           "USER", "OpenStackStandin", "Reply"]
