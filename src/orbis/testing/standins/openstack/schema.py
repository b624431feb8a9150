"""Request bodies the real APIs refuse are refused here too, in their words.

Nova validates a create-server body with JSON Schema (nova/api/openstack/compute/schemas/
servers.py and the parameter types it uses: `additionalProperties: false` at every level, `name`
and `flavorRef` required, metadata values strings of at most 255 characters, user_data base64 of
at most 65535 characters, `networks` entries of uuid/port/fixed_ip only, block device mappings
with the documented keys and enums); fields later microversions added are refused below them.
Neutron checks a body against its resource's attribute map: an attribute it does not know is
"Unrecognized attribute(s)", a required one missing fails to parse, an attribute that cannot be
changed is read-only on update.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import uuid
from typing import Any

import jsonschema

_NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^(?!\s)[\s\S]*(?<!\s)$"}
_STRING255 = {"type": "string", "minLength": 1, "maxLength": 255}
_BOOLEAN = {"type": ["boolean", "string"],
            "enum": [True, False, "True", "False", "true", "false", "1", "0", "yes", "no",
                     "on", "off", "t", "f", "y", "n"]}  # fmt: skip
_BDM_V2 = {
    "type": "object",
    "properties": {
        "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
        "destination_type": {"type": "string", "enum": ["local", "volume"]},
        "uuid": {"type": "string", "minLength": 1, "maxLength": 255,
                 "pattern": "^[a-zA-Z0-9._-]*$"},  # fmt: skip
        "image_id": {"type": "string", "format": "uuid"},
        "volume_id": {"type": "string", "format": "uuid"},
        "snapshot_id": {"type": "string", "format": "uuid"},
        "boot_index": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"},
        "volume_size": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1},
        "device_name": {"type": "string", "minLength": 1, "maxLength": 255,
                        "pattern": "^[a-zA-Z0-9._/-]*$"},  # fmt: skip
        "delete_on_termination": _BOOLEAN,
        "no_device": {},
        "connection_info": {"type": "string", "maxLength": 16777215},
        "guest_format": {"type": "string", "maxLength": 255},
        "device_type": {"type": "string", "maxLength": 255},
        "disk_bus": {"type": "string", "maxLength": 255},
    },
    "additionalProperties": False,
}
_SERVER = {
    "type": "object",
    "properties": {
        "name": _NAME,
        "imageRef": {"type": "string"},
        "flavorRef": {"type": ["string", "integer"], "minLength": 1},
        "adminPass": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": False, "patternProperties": {
            "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}}},
        "networks": {"type": "array", "items": {
            "type": "object",
            "properties": {"fixed_ip": {"type": "string", "format": "ipv4"},
                           "port": {"type": ["string", "null"], "format": "uuid"},
                           "uuid": {"type": "string"}},
            "additionalProperties": False}},  # fmt: skip
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
        "accessIPv4": {"type": "string", "format": "ipv4"},
        "accessIPv6": {"type": "string"},
        "personality": {"type": "array"},
        "availability_zone": _STRING255,
        "block_device_mapping": {"type": "array"},
        "block_device_mapping_v2": {"type": "array", "items": _BDM_V2},
        "config_drive": _BOOLEAN,
        "key_name": _STRING255,
        "min_count": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1},
        "max_count": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1},
        "return_reservation_id": _BOOLEAN,
        "security_groups": {"type": "array", "items": {
            "type": "object", "properties": {"name": _STRING255},
            "additionalProperties": False}},  # fmt: skip
        "user_data": {"type": "string", "format": "base64", "maxLength": 65535},
    },
    "required": ["name", "flavorRef"],
    "additionalProperties": False,
}
_CREATE_SERVER = {
    "type": "object",
    "properties": {"server": _SERVER, "os:scheduler_hints": {"type": "object"},
                   "OS-SCH-HNT:scheduler_hints": {"type": "object"}},  # fmt: skip
    "required": ["server"],
    "additionalProperties": False,
}
# what later microversions add to the server body (Nova's create_v219, v237, v242, v267...)
_LATER = {(2, 19): {"description": {"type": ["string", "null"], "maxLength": 255}},
          (2, 37): {"networks": {"oneOf": [_SERVER["properties"]["networks"],  # type: ignore[index]
                                           {"type": "string", "enum": ["auto", "none"]}]}},
          (2, 52): {"tags": {"type": "array", "items": {"type": "string"}, "maxItems": 50}},
          (2, 67): {"block_device_mapping_v2": {"type": "array", "items": {
              **_BDM_V2, "properties": {**_BDM_V2["properties"],  # type: ignore[dict-item]
                                        "volume_type": {"type": ["string", "null"]}}}}},
          (2, 90): {"hostname": {"type": "string", "minLength": 1, "maxLength": 255}}}  # fmt: skip

_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("base64", raises=(binascii.Error, ValueError))
def _base64(value: object) -> bool:
    if not isinstance(value, str):
        return True
    base64.b64decode(value, validate=True)
    return True


@_FORMATS.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(uuid.UUID(value))


@_FORMATS.checks("ipv4", raises=ValueError)
def _ipv4(value: object) -> bool:
    return not isinstance(value, str) or bool(ipaddress.IPv4Address(value))


def server_errors(body: Any, microversion: tuple[int, ...]) -> str | None:
    """Nova's 400 message for a create-server body it refuses, else None."""
    server = dict(_SERVER, properties=dict(_SERVER["properties"]))  # type: ignore[call-overload]
    for version, fields in _LATER.items():
        if microversion >= version:
            server["properties"].update(fields)
    schema = dict(_CREATE_SERVER, properties={**_CREATE_SERVER["properties"],  # type: ignore[dict-item]
                                              "server": server})  # fmt: skip
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft4Validator(schema, format_checker=_FORMATS).iter_errors(body))
    if error is None:
        return None
    field = "/".join(str(p) for p in error.absolute_path) or "request body"
    return f"Invalid input for field/attribute {field}. Value: {error.instance}. {error.message}"


# Neutron's attribute maps (what a body may carry) for the resources Orbis creates
PORT = {"name", "network_id", "admin_state_up", "mac_address", "fixed_ips", "device_id",
        "device_owner", "tenant_id", "project_id", "description", "security_groups",
        "allowed_address_pairs", "port_security_enabled", "binding:host_id", "binding:vnic_type",
        "binding:profile", "dns_name", "dns_domain", "extra_dhcp_opts", "qos_policy_id",
        "propagate_uplink_status", "numa_affinity_policy", "tags"}  # fmt: skip
PORT_READ_ONLY = {"network_id", "tenant_id", "project_id"}
FLOATINGIP = {"floating_network_id", "floating_ip_address", "subnet_id", "port_id",
              "fixed_ip_address", "tenant_id", "project_id", "description", "dns_domain",
              "dns_name", "qos_policy_id", "tags"}  # fmt: skip
FLOATINGIP_UPDATABLE = {"port_id", "fixed_ip_address", "description", "qos_policy_id"}
_UUID_FIELDS = {"network_id", "floating_network_id", "subnet_id", "port_id", "qos_policy_id"}


def neutron_errors(kind: str, body: Any, *, update: bool = False) -> str | None:
    """Neutron's 400 message for a port or floating-IP body it refuses, else None."""
    known, required = (PORT, "network_id") if kind == "port" else (FLOATINGIP,
                                                                   "floating_network_id")
    if not isinstance(body, dict) or not isinstance(body.get(kind), dict):
        return f"Resource body required: '{kind}' missing or not an object"
    attrs: dict[str, Any] = body[kind]
    unknown = sorted(set(attrs) - known)
    if unknown:
        return f"Unrecognized attribute(s) '{', '.join(unknown)}'"
    if update:
        fixed = set(attrs) & (PORT_READ_ONLY if kind == "port" else known - FLOATINGIP_UPDATABLE)
        if fixed:
            return f"Cannot update read-only attribute {sorted(fixed)[0]}"
    elif required not in attrs:
        return f"Failed to parse request. Required attribute '{required}' not specified"
    for name in sorted(_UUID_FIELDS & set(attrs)):
        value = attrs[name]
        if value is None and name in ("port_id", "qos_policy_id", "subnet_id"):
            continue
        try:
            uuid.UUID(str(value))
        except ValueError:
            return f"Invalid input for {name}. Reason: '{value}' is not a valid UUID."
    for name in ("fixed_ip_address", "floating_ip_address"):
        if attrs.get(name) is not None:
            try:
                ipaddress.ip_address(attrs[name])
            except ValueError:
                return (f"Invalid input for {name}. Reason: '{attrs[name]}' is not a valid IP "
                        "address.")  # fmt: skip
    for entry in attrs.get("fixed_ips") or []:
        if not isinstance(entry, dict) or set(entry) - {"subnet_id", "ip_address"}:
            return f"Invalid input for fixed_ips. Reason: Invalid data format for fixed IP: {entry}"
    return None


MAX_SUBNET_HOST_ROUTES = 20  # Neutron's max_subnet_host_routes default


def host_routes_error(routes: Any) -> str | None:
    """Neutron's 400 message for a subnet's `host_routes` it refuses (neutron-lib's
    validate_hostroutes: exact keys, a destination with no host bits, not loopback, a nexthop
    in canonical form, no duplicate), else None."""
    if not isinstance(routes, list):
        return ("Invalid input for host_routes. Reason: Invalid data format for hostroute: "
                f"'{routes}'")  # fmt: skip
    seen: list[Any] = []
    for route in routes:
        reason = None
        if not isinstance(route, dict):
            reason = (f"Invalid input. '{route}' must be a dictionary with keys: "
                      "['destination', 'nexthop']")  # fmt: skip
        elif set(route) != {"destination", "nexthop"}:
            reason = ("Validation of dictionary's keys failed. Expected keys: {'destination', "
                      f"'nexthop'}} Provided keys: {set(route)}")  # fmt: skip
        else:
            reason = _route_cidr_error(route["destination"]) or _ip_error(route["nexthop"])
            if reason is None and route in seen:
                reason = f"Duplicate hostroute '{route}'"
        if reason:
            return f"Invalid input for host_routes. Reason: {reason}"
        seen.append(route)
    return None


def _route_cidr_error(data: Any) -> str | None:
    try:
        net = ipaddress.ip_network(str(data), strict=True)
    except ValueError:
        return f"'{data}' is not a valid CIDR"
    if "/" not in str(data) or " " in str(data):
        return f"'{data}' is not a valid CIDR"
    if net.is_loopback:
        return f"'{data}' is not a routable CIDR"
    return None


def _ip_error(data: Any) -> str | None:
    text = str(data)
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):  # netaddr reads leading zeros
        text = ".".join(str(int(p)) for p in parts)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return f"'{data}' is not a valid IP address"
    if address.version == 4 and str(address) != data:
        return f"'{data}' is not an accepted IP address, '{address}' is recommended"
    return None
