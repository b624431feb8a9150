"""IM export documents, written for tests from what IM's public behaviour shows: the `data`
string of `GET /infrastructures/ID/data` (a JSON object whose `vm_list` entries, and each VM's
`cloud`, are themselves JSON strings; each VM's `info` is its RADL text with addresses, state
and credentials). Nothing here comes from IM's code."""

from __future__ import annotations

import json
from typing import Any

import asyncssh
import yaml

TOSCA = {
    "tosca_definitions_version": "tosca_simple_yaml_1_0",
    "imports": ["https://raw.githubusercontent.com/indigo-dc/tosca-types/master/custom_types.yaml"],
    "topology_template": {
        "node_templates": {
            "front": {
                "type": "tosca.nodes.indigo.Compute",
                "capabilities": {"endpoint": {"properties": {"network_name": "PUBLIC"}},
                                 "host": {"properties": {"num_cpus": 2, "mem_size": "2 GB"}}},
            },
            "wn": {
                "type": "tosca.nodes.indigo.Compute",
                "capabilities": {"scalable": {"properties": {"count": 1}}},
            },
        },
        "outputs": {"front_ip": {"value": {"get_attribute": ["front", "public_address", 0]}}},
    },
}  # fmt: skip

RADL = """network public ( outbound = 'yes' and outports = '8080' )
network private ( )
system front (
    cpu.count >= 1 and
    memory.size >= 1g and
    net_interface.0.connection = 'public' and
    net_interface.1.connection = 'private' and
    disk.0.os.name = 'linux' and
    disk.0.image.url = 'one://one.example.org/12'
)
system wn (
    cpu.count >= 1 and
    memory.size >= 1g and
    net_interface.0.connection = 'private' and
    disk.0.os.name = 'linux' and
    disk.0.image.url = 'one://one.example.org/12'
)
configure front (
@begin
- tasks:
  - debug: msg=hello
@end
)
deploy front 1 one
deploy wn 1 one
"""


def rsa_key() -> str:
    """A private key as IM's connectors make them (RSA, PEM)."""
    key = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    return str(key.export_private_key("pkcs1-pem").decode())


def vm_info(name: str, state: str, key: str, *, public: str | None, private: str,
            user: str = "cloudadm", ssh_port: int | None = None) -> str:  # fmt: skip
    """A VM's RADL as IM shows it (GET .../vms/N): its networks and its system."""
    outports = f" and outports = '{ssh_port}-22'" if ssh_port else ""
    lines = [f"network public ( outbound = 'yes'{outports} )", "network private ( )", ""]
    features = []
    index = 0
    if public:
        features += [f"net_interface.{index}.connection = 'public'",
                     f"net_interface.{index}.ip = '{public}'"]  # fmt: skip
        index += 1
    features += [f"net_interface.{index}.connection = 'private'",
                 f"net_interface.{index}.ip = '{private}'",
                 "disk.0.os.name = 'linux'",
                 f"disk.0.os.credentials.username = '{user}'",
                 f"disk.0.os.credentials.private_key = '{key}'",
                 f"state = '{state}'",
                 "cpu.count = 2", "memory.size = 2048m"]  # fmt: skip
    lines.append(f"system {name} (\n" + " and\n".join(features) + "\n)")
    return "\n".join(lines) + "\n"


def vm(im_id: int, name: str, state: str, provider_id: str, cloud: dict[str, Any],
       info: str, **extra: Any) -> str:  # fmt: skip
    return json.dumps({
        "last_update": 1700000000, "destroy": False, "state": state, "id": provider_id,
        "im_id": im_id, "creation_im_id": im_id, "cloud": json.dumps(cloud), "info": info,
        "requested_radl": info, "cont_out": f"VM {im_id} configured by IM\n",
        "configured": state == "configured", "ctxt_pid": None, "ssh_connect_errors": 0,
        "creating": False, "error_msg": None, "deleting": False, **extra,
    })  # fmt: skip


def cloud(site: str, kind: str, server: str = "") -> dict[str, Any]:
    return {"id": site, "type": kind, "server": server, "port": -1, "protocol": "https",
            "path": "", "extra": {}}  # fmt: skip


def infrastructure(vms: list[str], *, radl: str, tosca: dict[str, Any] | None = None,
                   **extra: Any) -> str:  # fmt: skip
    """The `data` string: what `PUT /infrastructures` takes."""
    owners = json.dumps([{"type": "InfrastructureManager", "username": "imuser",
                          "password": "impass"}])  # fmt: skip
    return json.dumps({
        "id": "0d5a7e3c-1b2a-11ef-9d2a-0242ac120002", "auth": owners, "radl": radl,
        "extra_info": {"TOSCA": yaml.safe_dump(tosca)} if tosca else {},
        "vm_list": vms, "vm_master": 0, "vm_id": len(vms), "cont_out": "IM: contextualized\n",
        "private_networks": {}, "system_counter": 0, "deleted": False,
        "ansible_configured": True, "configured": True, "snapshots": [], **extra,
    })  # fmt: skip
