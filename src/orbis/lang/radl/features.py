"""Well-known RADL features (reference §1.5) and what each one takes.

Names are compared with every index written as N (`disk.0.os.name` → `disk.N.os.name`). A
name that is not in the table but close to one is reported as a misspelling; one far from all
is kept as a free feature, since IM's connectors read many more keys than the docs list.
"""

from __future__ import annotations

import difflib
import re

# kinds: num, size, perf, str, yesno, enum:a|b, url, list, contains, version, password,
#        network (names a network), ansible (names an ansible section), outports, any
SYSTEM: dict[str, str] = {
    "cpu.count": "num", "cpu.arch": "enum:i386|x86_64", "cpu.performance": "perf",
    "cpu.sgx": "any", "cpu.sgx.epc_size": "size", "memory.size": "size",
    "gpu.count": "num", "gpu.vendor": "str", "gpu.model": "str", "price": "num",
    "instance_type": "str", "instance_name": "str", "instance_id": "str",
    "instance_tags": "str", "availability_zone": "str", "spot": "yesno",
    "image_type": "enum:vmdk|qcow|qcow2|raw", "virtual_system_type": "str",
    "ansible_host": "ansible", "nat_instance": "yesno", "rg_name": "str",
    "name": "any", "script": "any", "alpine": "any", "state": "any", "error_msg": "any",
    "net_interface.N.connection": "network", "net_interface.N.ip": "str",
    "net_interface.N.dns_name": "str", "net_interface.N.dns.N.name": "str",
    "net_interface.N.dns.N.tls": "any", "net_interface.N.dns.N.tls.certificate": "any",
    "net_interface.N.dns.N.tls.private_key": "any",
    "net_interface.N.additional_dns_names": "list", "net_interface.N.additional_ip": "str",
    "disk.N.image.url": "url", "disk.N.image.name": "str",
    "disk.N.os.name": "enum:linux|windows|mac os x", "disk.N.os.flavour": "str",
    "disk.N.os.version": "version", "disk.N.os.credentials.username": "str",
    "disk.N.os.credentials.password": "str", "disk.N.os.credentials.public_key": "str",
    "disk.N.os.credentials.private_key": "str",
    "disk.N.os.credentials.new.password": "password",
    "disk.N.os.credentials.new.private_key": "str",
    "disk.N.size": "size", "disk.N.free_size": "size", "disk.N.type": "str",
    "disk.N.device": "str", "disk.N.mount_path": "str", "disk.N.fstype": "str",
    "disk.N.applications": "contains",
}  # fmt: skip
# Connector-specific families: anything below these prefixes is accepted as written.
FREE_PREFIXES = ("input.", "output.", "minio.", "docker.", "environment.", "kubernetes.")
NETWORK: dict[str, str] = {
    "outbound": "yesno", "outports": "outports", "provider_id": "str", "create": "yesno",
    "cidr": "str", "sg_name": "str", "router": "str", "proxy_host": "str", "proxy_key": "str",
}  # fmt: skip
ANSIBLE: dict[str, str] = {
    "host": "str", "credentials.username": "str", "credentials.password": "str",
    "credentials.private_key": "str",
}  # fmt: skip
APPLICATION: dict[str, str] = {"name": "str", "version": "str", "preinstalled": "yesno"}
TABLES: dict[str, dict[str, str]] = {
    "system": SYSTEM, "network": NETWORK, "ansible": ANSIBLE, "app": APPLICATION,
}  # fmt: skip

_INDEX = re.compile(r"\.\d+(?=\.|$)")
_MIN_LENGTH = 5  # shorter unknown names are never called misspellings
_CUTOFF = 0.85


def normal(name: str) -> str:
    """`disk.1.os.name` → `disk.N.os.name`."""
    return _INDEX.sub(".N", name)


def kind_of(section: str, name: str) -> str | None:
    """What a well-known feature takes, or None for a free (unknown) feature."""
    table = TABLES.get(section)
    if table is None:
        return "any"  # description: free-form
    kind = table.get(normal(name))
    if kind is None and section == "system" and name.startswith(FREE_PREFIXES):
        return "any"
    return kind


def misspelling(section: str, name: str) -> str | None:
    """The well-known name `name` was probably meant to be (indices as written), or None."""
    table = TABLES.get(section)
    if table is None or len(name) < _MIN_LENGTH:
        return None
    norm = normal(name)
    close = difflib.get_close_matches(norm, list(table), n=1, cutoff=_CUTOFF)
    if not close:
        return None
    indices = iter(m.group() for m in _INDEX.finditer(name))
    return re.sub(r"\.N(?=\.|$)", lambda _: next(indices, ".0"), close[0])
