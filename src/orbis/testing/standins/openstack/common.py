"""What every service of the OpenStack stand-in shares: fixtures, the error reply, the state.

The services are classes chained by inheritance (identity -> reservation -> image -> volume ->
booting -> network -> compute -> the stand-in itself), each in its own module, so a service can
call what an earlier one offers (Nova makes Neutron ports, Cinder makes Glance images) while
the state they all read is declared once, here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orbis.testing.standins.openstack.boot import ContainerBoot

FIXTURES = Path(__file__).with_name("fixtures")
USER, PASSWORD, DOMAIN = "demo", "secret", "Default"
APPCRED_ID = "6f0c1e0d5a1f4b1c8d2e3f4a5b6c7d8e"
IDP, PROTOCOL, ACCESS_TOKEN = "egi.eu", "openid", "eyJhbGciOiJSUzI1NiJ9.standin"
DEFAULT_QUOTA = {"instances": 10, "cores": 20, "ram": 51200, "floating_ips": 10,
                 "security_groups": 10, "volumes": 10, "gigabytes": 1000,
                 "images": 20}  # fmt: skip
TRANSITIONAL = {"CREATING", "STARTING", "UPDATING", "TERMINATING", "DELETING"}


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    data.pop("_doc", None)
    return data


def _fill(template: Any, **values: Any) -> Any:
    """A fixture body with its {placeholders} filled in."""
    text = json.dumps(template)
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return json.loads(text)


class Reply(Exception):
    """Raised by a route to answer with an error (or any early) response."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


class StandinState:
    """The in-memory cloud every service reads and changes (set up by OpenStackStandin)."""

    url: str
    region: str
    catalog_urls: dict[str, str]
    quota: dict[str, int]
    errors: dict[str, Any]
    projects: list[dict[str, Any]]
    refuse_auth: bool
    build_polls: int
    fault: str | None
    lease_polls: int
    lease_delete_conflicts: int
    lease_degraded: bool
    sg_delete_conflicts: int
    image_polls: int
    image_fault: str | None
    compute_microversion: str
    volume_polls: int
    volume_fault: str | None
    flavors: dict[str, dict[str, Any]]
    images: dict[str, dict[str, Any]]
    hosts: list[dict[str, Any]]
    volume_types: dict[str, dict[str, Any]]
    networks: dict[str, dict[str, Any]]
    subnets: dict[str, dict[str, Any]]
    ports: dict[str, dict[str, Any]]
    routers: dict[str, dict[str, Any]]
    floatingips: dict[str, dict[str, Any]]
    security_groups: dict[str, dict[str, Any]]
    servers: dict[str, dict[str, Any]]
    keypairs: dict[str, dict[str, Any]]
    volumes: dict[str, dict[str, Any]]
    leases: dict[str, dict[str, Any]]
    reserved_flavors: dict[str, dict[str, Any]]
    tokens: dict[str, str | None]
    _headers: Any
    _next_ip: dict[str, int]
    # real containers for servers (None: an API-only cloud, the default)
    boot: ContainerBoot | None

    @property
    def project(self) -> dict[str, Any]:
        return self.projects[0]

    @staticmethod
    def _matches(record: dict[str, Any], query: dict[str, str]) -> bool:
        for key, wanted in query.items():
            if key in ("fields", "limit", "marker", "sort_key", "sort_dir"):
                continue
            if key == "tags":
                if not set(wanted.split(",")) <= set(record.get("tags", [])):
                    return False
            elif key in record and str(record[key]).lower() != wanted.lower():
                return False
        return True
