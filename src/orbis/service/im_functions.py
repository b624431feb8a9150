"""An infrastructure's functions in IM's export form, both ways. Pure: no store, no cloud.

IM keeps a function as its template does: an unhosted one (an OSCAR service made through IM's
OSCAR connector, a Lambda function through its Lambda connector) is a VM of the infrastructure,
whose `id` is the service's name, whose `cloud` is the connector's auth line (`type` OSCAR or
Lambda, its server) and whose RADL system, named after the function's node, carries `name`,
`script`, `memory.size`, `cpu.count`, `disk.0.image.url`, `provider.type` and `instance_id`. A
function hosted on an OSCAR node of the template is no VM in IM: it lives in the TOSCA (IM's
Ansible step of the OSCAR node creates it), so the export writes nothing more for it and an
import reads it back from the template, at the address of its OSCAR node's imported machine.

What comes back is a function record (the `functions` table's columns), adopted or detached
by the rule Orbis's own format follows (function_adoption.py): the export is the client's text.
Orbis adds `endpoint` to the system (IM ignores features it does not know): a Lambda
function's URL cannot be told from its auth line.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from typing import Any

from orbis.engine.function_places import HOSTED_PREFIX, Waiting, hosted_target
from orbis.model.infrastructure import Template
from orbis.providers.oscar import FdlError
from orbis.service.vm_radl import to_radl_text
from orbis.store.schema import FunctionRow, NodeRow

CLOUD_TYPES = {"oscar": "OSCAR", "lambda": "Lambda"}  # backend -> IM connector type
BACKENDS = {"oscar": "oscar", "lambda": "lambda"}  # connector type (lower) -> backend
LIMITS = {"name": 255, "service": 255, "site": 255, "endpoint": 2048, "error": 4096}
IM_STATE = {"running": "running", "failed": "failed", "pending": "pending"}


def is_function_cloud(kind: str) -> bool:
    return kind.lower() in BACKENDS


def _cloud(row: FunctionRow, lines: Mapping[str, Mapping[str, str]]) -> str:
    line = lines.get(row.site, {})
    host = str(line.get("host") or row.endpoint or "")
    protocol, _, rest = host.rpartition("://")
    server, _, port = rest.partition("/")[0].partition(":")
    return json.dumps({"id": row.site, "type": CLOUD_TYPES.get(row.backend, "OSCAR"),
                       "server": server, "port": int(port) if port.isdigit() else -1,
                       "protocol": protocol or "https", "path": "", "extra": {}})  # fmt: skip


def function_vms(functions: list[FunctionRow], template: Template, first_id: int,
                 lines: Mapping[str, Mapping[str, str]]) -> list[str]:  # fmt: skip
    """IM's VM entries of the unhosted functions (hosted ones live in the TOSCA); `lines` maps
    an auth line id to its `type` and `host` (never its secrets)."""
    found = []
    made = [f for f in functions if f.service and not f.site.startswith(HOSTED_PREFIX)]
    for index, row in enumerate(made):
        fn = template.functions.get(row.name)
        system: dict[str, Any] = {"class": "system", "id": row.name, "name": row.service,
                                  "provider.type": CLOUD_TYPES.get(row.backend, "OSCAR"),
                                  "instance_id": row.service, "endpoint": row.endpoint,
                                  "state": IM_STATE.get(row.state, "unknown")}  # fmt: skip
        if fn is not None:
            if fn.script:
                system["script"] = fn.script
            if fn.image:
                system["disk.0.image.url"] = fn.image
            if fn.memory:
                system["memory.size"] = fn.memory
            if fn.cpu is not None:
                system["cpu.count"] = fn.cpu
        if row.backend == "oscar":
            system["disk.0.os.credentials.username"] = "oscar"
        if row.error:
            system["error_msg"] = row.error
        vm_id = first_id + index
        found.append(json.dumps({
            "id": row.service, "im_id": vm_id, "creation_im_id": vm_id,
            "state": IM_STATE.get(row.state, "unknown"), "destroy": row.deleted,
            "deleting": False, "creating": False, "cloud": _cloud(row, lines),
            "info": to_radl_text([system]), "requested_radl": to_radl_text([system]),
            "cont_out": "", "configured": None, "error_msg": row.error or None,
            "ctxt_pid": None, "ssh_connect_errors": 0, "last_update": int(time.time()),
        }))  # fmt: skip
    return found


def function_record(vm: Mapping[str, Any], cloud: Mapping[str, Any], name: str,
                    values: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The function record of an IM VM on an OSCAR or Lambda connector; ValueError names
    the bad value."""
    backend = BACKENDS[str(cloud.get("type")).lower()]
    site = cloud.get("id")
    if not isinstance(site, str) or not site:
        raise ValueError("cloud.id missing: the auth line id of the function's connector")
    service = vm.get("id") or values.get("name") or ""
    endpoint = values.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        server, port = str(cloud.get("server") or ""), cloud.get("port")
        protocol = str(cloud.get("protocol") or "https")
        endpoint = (f"{protocol}://{server}" + (f":{port}" if isinstance(port, int) and port > 0
                                                else "")) if server else ""  # fmt: skip
    state = str(vm.get("state") or "")
    error = vm.get("error_msg")
    row = {"name": name, "backend": backend, "site": site, "service": str(service),
           "endpoint": endpoint.rstrip("/"), "digest": "",
           "state": state if state in ("running", "failed") else "pending",
           "error": error if isinstance(error, str) else "",
           "deleted": bool(vm.get("destroy", False))}  # fmt: skip
    for key, limit in LIMITS.items():
        if len(str(row[key])) > limit:
            raise ValueError(f"{key} is longer than {limit} characters")
    return row


def hosted_records(template: Template, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of the template's hosted functions whose OSCAR node's machine came in
    (configured, with an address): where they would be, as IM made them there."""
    found = []
    for fn in template.functions.values():
        if not fn.host or fn.count < 1:
            continue
        with contextlib.suppress(Waiting, FdlError):
            machines = [NodeRow(**{k: v for k, v in n.items() if k != "adoption"})
                        for n in nodes]  # fmt: skip
            target = hosted_target(template, fn.host, machines)
            found.append({"name": fn.name, "backend": "oscar", "site": HOSTED_PREFIX + fn.host,
                          "service": str(fn.properties.get("name") or ""),
                          "endpoint": target.endpoint, "digest": "", "state": "running",
                          "error": "", "deleted": False})  # fmt: skip
    return found
