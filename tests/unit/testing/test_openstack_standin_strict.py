"""The OpenStack stand-in refuses the request bodies Nova and Neutron refuse (schema.py), and
still takes the ones they take; its user_data subset becomes the expected shell script."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from orbis.testing.standins.openstack import PASSWORD, USER, OpenStackStandin
from orbis.testing.standins.openstack.userdata import UserDataError, script

UBUNTU = "6e1f2a3b-0000-4000-8000-000000000001"
PUBLIC = "9d8a6b2c-0000-4000-8000-0000000000e1"
PRIVATE = "9d8a6b2c-0000-4000-8000-0000000000e2"


@pytest.fixture
def api() -> Iterator[tuple[OpenStackStandin, httpx.Client]]:
    with OpenStackStandin(private_network=True, compute_microversion="2.19") as cloud:
        token = httpx.post(f"{cloud.url}/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": USER, "password": PASSWORD, "domain": {"name": "Default"}}}},
            "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}})
        headers = {"X-Auth-Token": token.headers["X-Subject-Token"]}
        with httpx.Client(base_url=cloud.url, headers=headers) as client:
            yield cloud, client


def server(**extra: Any) -> dict[str, Any]:
    return {"server": {"name": "vm", "flavorRef": "1", "imageRef": UBUNTU,
                       "networks": [{"uuid": PRIVATE}]} | extra}  # fmt: skip


def nova_refuses(client: httpx.Client, body: Any, version: str = "2.1") -> str:
    answer = client.post("/compute/v2.1/servers", json=body,
                         headers={"OpenStack-API-Version": f"compute {version}"})
    assert answer.status_code == 400, answer.text
    return str(answer.json()["badRequest"]["message"])


def test_nova_takes_a_valid_create_server_body(api) -> None:
    cloud, client = api
    body = server(metadata={"orbis.infrastructure": "x"}, key_name="k",
                  user_data=base64.b64encode(b"#!/bin/sh\n").decode(),
                  security_groups=[{"name": "default"}])  # fmt: skip
    assert client.post("/compute/v2.1/servers", json=body).status_code == 202
    assert len(cloud.servers) == 1


@pytest.mark.parametrize(("body", "words"), [
    ({"server": {"name": "vm", "flavorRef": "1", "colour": "red"}}, "'colour' was unexpected"),
    ({"server": {"name": "vm"}}, "'flavorRef' is a required property"),
    ({"server": {"name": " vm", "flavorRef": "1"}}, "server/name"),
    ({"server": {"name": "vm", "flavorRef": "1"}, "extra": 1}, "'extra' was unexpected"),
    (server(user_data="not base64!"), "is not a 'base64'"),
    (server(metadata={"cpus": 2}), "2 is not of type 'string'"),
    (server(networks=[{"uuid": PRIVATE, "subnet": "x"}]), "'subnet' was unexpected"),
    (server(security_groups=["default"]), "'default' is not of type 'object'"),
    (server(block_device_mapping_v2=[{"source_type": "disk", "boot_index": 0}]),
     "'disk' is not one of"),
    (server(block_device_mapping_v2=[{"source_type": "blank", "volume_type": "ssd"}]),
     "'volume_type' was unexpected"),
    (server(description="below 2.19"), "'description' was unexpected"),
])  # fmt: skip
def test_nova_refuses_what_its_schema_refuses(api, body, words) -> None:
    cloud, client = api
    assert words in nova_refuses(client, body)
    assert cloud.servers == {}


def test_later_microversions_add_their_fields(api) -> None:
    _, client = api
    answer = client.post("/compute/v2.1/servers", json=server(description="at 2.19"),
                         headers={"OpenStack-API-Version": "compute 2.19"})  # fmt: skip
    assert answer.status_code == 202, answer.text


def neutron(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    return client.request(method, f"/network/v2.0{path}", json=body)


def test_neutron_takes_a_port_and_a_floating_ip(api) -> None:
    cloud, client = api
    port = neutron(client, "POST", "/ports", {"port": {"network_id": PRIVATE, "name": "p",
        "fixed_ips": [{"ip_address": "10.0.0.50"}]}})  # fmt: skip
    assert port.status_code == 201, port.text
    assert port.json()["port"]["fixed_ips"][0]["ip_address"] == "10.0.0.50"
    again = neutron(client, "POST", "/ports", {"port": {"network_id": PRIVATE,
        "fixed_ips": [{"ip_address": "10.0.0.50"}]}})  # fmt: skip
    assert again.status_code == 409 and "IpAddressAlreadyAllocated" in again.text
    fip = neutron(client, "POST", "/floatingips", {"floatingip": {
        "floating_network_id": PUBLIC, "description": "d"}})
    assert fip.status_code == 201, fip.text
    fip_id = fip.json()["floatingip"]["id"]
    moved = neutron(client, "PUT", f"/floatingips/{fip_id}", {"floatingip": {
        "port_id": port.json()["port"]["id"]}})
    assert moved.status_code == 200, moved.text
    assert len(cloud.floatingips) == 1


@pytest.mark.parametrize(("method", "path", "body", "words"), [
    ("POST", "/ports", {"port": {"network_id": PRIVATE, "colour": "red"}},
     "Unrecognized attribute(s) 'colour'"),
    ("POST", "/ports", {"port": {"name": "p"}}, "Required attribute 'network_id' not specified"),
    ("POST", "/ports", {"port": {"network_id": "private"}}, "'private' is not a valid UUID"),
    ("POST", "/ports", {"port": {"network_id": PRIVATE, "fixed_ips": [{"ip": "10.0.0.9"}]}},
     "Invalid data format for fixed IP"),
    ("POST", "/floatingips", {"floatingip": {"floating_network_id": PUBLIC, "pool": "x"}},
     "Unrecognized attribute(s) 'pool'"),
    ("POST", "/floatingips", {"floatingip": {"port_id": None}},
     "Required attribute 'floating_network_id' not specified"),
    ("POST", "/floatingips", {"floatingip": {"floating_network_id": PUBLIC,
                                             "floating_ip_address": "x"}},
     "'x' is not a valid IP address"),
])  # fmt: skip
def test_neutron_refuses_what_its_attribute_map_refuses(api, method, path, body, words) -> None:
    cloud, client = api
    ports = len(cloud.ports)
    answer = neutron(client, method, path, body)
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["NeutronError"]["message"]
    assert len(cloud.ports) == ports and cloud.floatingips == {}


def test_a_floating_ip_cannot_change_pool(api) -> None:
    _, client = api
    fip = neutron(client, "POST", "/floatingips", {"floatingip": {"floating_network_id": PUBLIC}})
    answer = neutron(client, "PUT", f"/floatingips/{fip.json()['floatingip']['id']}",
                     {"floatingip": {"floating_network_id": PRIVATE}})  # fmt: skip
    assert answer.status_code == 400
    assert "read-only attribute floating_network_id" in answer.json()["NeutronError"]["message"]


def test_cloud_config_becomes_a_script() -> None:
    text, ignored = script("#cloud-config\n" + """
bootcmd: [echo boot]
users:
  - default
  - name: cloudadm
    sudo: ALL=(ALL) NOPASSWD:ALL
    homedir: /opt/cloudadm
    shell: /bin/bash
    ssh-authorized-keys: [ssh-ed25519 AAAA key]
ssh_authorized_keys: [ssh-ed25519 BBBB root]
runcmd: ["touch /ran", [echo, two words]]
packages: [htop]
merge_how: x
""")
    lines = text.splitlines()
    assert lines[:3] == ["#!/bin/bash", "set -eu", "sh -c 'echo boot'"]
    assert "useradd -m -d /opt/cloudadm -s /bin/bash cloudadm" in text
    assert "printf %s 'cloudadm ALL=(ALL) NOPASSWD:ALL\n' > /etc/sudoers.d/90-cloud-init-users-cloudadm" in text  # noqa: E501
    assert "printf %s 'ssh-ed25519 AAAA key\n' >> /opt/cloudadm/.ssh/authorized_keys" in text
    assert "printf %s 'ssh-ed25519 BBBB root\n' >> /root/.ssh/authorized_keys" in text
    assert lines[-2:] == ["sh -c 'touch /ran'", "echo 'two words'"]
    assert ignored == ["packages"]


def test_user_data_scripts_run_as_they_are_and_other_formats_are_refused() -> None:
    assert script("#!/bin/sh\necho hi\n") == ("#!/bin/sh\necho hi\n", [])
    with pytest.raises(UserDataError, match="neither"):
        script("Content-Type: multipart/mixed")
