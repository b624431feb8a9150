"""An Orbis infrastructure written in IM's export form (`GET .../data?format=im`), the form
im_read.py reads and IM's `PUT /infrastructures` takes. Pure: rows in, JSON text out.

Left out on purpose: `auth` (IM writes its owners' credentials there; Orbis never exports
credentials, and the importer becomes the owner anyway), the steps of the configuration (IM
keeps none) and anything of Orbis's own bookkeeping (docs/compatibility.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from orbis.lang.radl.writer import to_radl
from orbis.model.infrastructure import Template
from orbis.model.states import NodeState
from orbis.service.im_functions import function_vms
from orbis.service.vm_radl import node_radl, to_radl_text
from orbis.store.schema import FunctionRow, InfrastructureRow, NodeRow

LOCAL_CLOUD = {"id": "local", "type": "Local", "host": ""}
# the type of a site none of the infrastructure's lines names (a node imported detached)
UNKNOWN_TYPE = "unknown"
# what a VM's requested RADL leaves out: what the cloud and the configuration found
OBSERVED = ("state", "instance_id", "instance_name", "error_msg")


def _configured(state: str) -> bool | None:
    """IM's `configured` flag: None while contextualization has not ended."""
    if state == NodeState.CONFIGURED:
        return True
    if state in (NodeState.UNCONFIGURED, NodeState.FAILED):
        return False
    return None


def _cloud(site: str | None, clouds: Mapping[str, Mapping[str, str]]) -> str:
    line = LOCAL_CLOUD if not site or site == "local" else clouds.get(site, {"type": UNKNOWN_TYPE})
    host = str(line.get("host", ""))
    protocol, _, rest = host.rpartition("://")
    server, _, port = rest.partition("/")[0].partition(":")
    return json.dumps({"id": site or "local", "type": str(line.get("type") or UNKNOWN_TYPE),
                       "server": server, "port": int(port) if port.isdigit() else -1,
                       "protocol": protocol, "path": "", "extra": {}})  # fmt: skip


def _vm(node: NodeRow, template: Template, private_key: str,
        clouds: Mapping[str, Mapping[str, str]]) -> str:  # fmt: skip
    objects = node_radl(node, template.computes.get(node.name), private_key)
    if node.ssh_port and node.public_ip:  # IM reads the SSH port from the public outports
        for obj in objects:
            if obj["class"] == "network" and obj.get("outbound") == "yes":
                obj["outports"] = f"{node.ssh_port}-22"
    requested = [
        {k: v for k, v in obj.items() if k not in OBSERVED and ".ip" not in k
         and ".credentials." not in k}
        for obj in objects
    ]  # fmt: skip
    return json.dumps({
        "id": node.provider_id, "im_id": node.vm_id, "creation_im_id": node.vm_id,
        "state": node.state, "destroy": node.deleted, "deleting": False, "creating": False,
        "cloud": _cloud(node.site, clouds), "info": to_radl_text(objects),
        "requested_radl": to_radl_text(requested), "cont_out": node.log or "",
        "configured": _configured(node.state), "error_msg": node.error or None,
        "ctxt_pid": None, "ssh_connect_errors": 0, "last_update": int(time.time()),
    })  # fmt: skip


def im_document(row: InfrastructureRow, nodes: list[NodeRow], template: Template,
                private_key: str, clouds: Mapping[str, Mapping[str, str]],
                functions: list[FunctionRow] | None = None) -> str:  # fmt: skip
    """IM's export of `row`: `clouds` maps a site id (and an OSCAR or Lambda line's id) to its
    auth line's `type` and `host` (never its secrets); `functions`, its function records
    (unhosted ones become VMs on their connector, as in IM: im_functions.py)."""
    live = [n for n in nodes if not n.deleted]
    master = next((n.vm_id for n in live if n.public_ip), None)
    flags = [_configured(n.state) for n in live]
    configured = False if False in flags else (True if flags and all(flags) else None)
    radl = row.template if row.template_format == "radl" else to_radl(template)
    next_id = max([row.next_vm_id, *(n.vm_id + 1 for n in nodes)])
    made = function_vms(functions or [], template, next_id, clouds)
    doc: dict[str, Any] = {
        "id": row.id, "auth": None, "radl": radl,
        "extra_info": {"TOSCA": row.template} if row.template_format == "tosca" else {},
        "vm_list": [_vm(n, template, private_key, clouds) for n in nodes] + made,
        "vm_master": master, "vm_id": next_id + len(made),
        "cont_out": row.log or "", "configured": configured, "ansible_configured": None,
        "private_networks": {}, "system_counter": 0, "deleted": False, "snapshots": [],
    }  # fmt: skip
    return json.dumps(doc)
