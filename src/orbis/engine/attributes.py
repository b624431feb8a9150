"""Values of `get_attribute` once nodes exist: addresses, ids, names, the login credential,
the contextualization log and Ansible's per-task output (IM's list, tosca-dialect §3)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from orbis.model.infrastructure import Template
from orbis.overlay.model import overlay_address
from orbis.store.schema import NodeRow

LIST_VALUED_TYPE = "tosca.nodes.indigo.Compute"  # IM gives lists only for this exact type
# a step's section of a node log ("<time> Step web.configure: ok") and a task line in it
STEP_LINE = re.compile(r"^\S+ Step (?P<step>\S+): (?P<status>\w+)$")
TASK_LINE = re.compile(r"^TASK \[(?P<task>.*)\] (?P<state>\w+)$")


def ansible_output(log: str) -> dict[str, Any]:
    """`{step: {"tasks": {task: {"state", "output"}}}}` read back from a node's log; each step
    also under IM's name for it (`<operation>_<node>`: "web.configure" → "configure_web")."""
    steps: dict[str, Any] = {}
    tasks: dict[str, Any] | None = None
    task: dict[str, Any] | None = None
    for line in log.splitlines():
        if found := STEP_LINE.match(line):
            tasks, task = {}, None
            node, _, operation = found["step"].rpartition(".")
            steps[found["step"]] = {"tasks": tasks}
            if node:
                steps.setdefault(f"{operation}_{node}", {"tasks": tasks})
        elif tasks is not None and (found := TASK_LINE.match(line)):
            task = tasks[found["task"]] = {"state": found["state"], "output": ""}
        elif task is not None and line.startswith("  "):
            task["output"] += ("\n" if task["output"] else "") + line[2:]
        elif not line.startswith("  "):
            task = None  # a line of the service's own: the task's output ended
    return steps


def _dig(value: Any, keys: tuple[Any, ...]) -> Any:
    for key in keys:
        if isinstance(value, list) and isinstance(key, int):
            value = value[key] if 0 <= key < len(value) else None
        elif isinstance(value, dict):
            value = value.get(key)
        else:
            return None
    return value


def attribute_resolver(
    template: Template,
    nodes: list[NodeRow],
    *,
    self_node: str | None = None,
    private_key: str | None = None,
    functions: Mapping[str, Mapping[str, Any]] | None = None,
) -> Callable[[str, str, tuple[Any, ...]], Any]:
    """A callback for `orbis.lang.functions.evaluate` reading the current nodes;
    `private_key` (the infrastructure's) is what `endpoint.credential` gives its owner;
    `functions` the `endpoint` and `credential` of each live function (engine/functions.py)."""
    by_compute: dict[str, list[NodeRow]] = {}
    for row in nodes:
        if not row.deleted:
            by_compute.setdefault(row.name, []).append(row)

    def resolve(node: str, attribute: str, rest: tuple[Any, ...]) -> Any:
        if node in ("SELF", "SOURCE", "TARGET") and self_node:
            node = self_node
        if node == "HOST" and self_node:
            comp = template.components.get(self_node)
            node = comp.host if comp else self_node
        if attribute == "tosca_name":
            return node
        if node in template.functions:  # IM: endpoint and credential (null until it exists)
            known = (functions or {}).get(node) or {}
            if attribute in ("endpoint", "credential"):
                return _dig(known.get(attribute), rest)
            return None
        if node in template.containers:  # a container app: its endpoints, once deployed
            apps = by_compute.get(node, [])
            endpoints = list(apps[0].endpoints or []) if apps else []
            if attribute == "endpoints":
                return endpoints
            if attribute in ("public_address", "ip_address") and endpoints:
                return endpoints[0].rsplit(":", 1)[0]
            return None
        compute_name = node
        component = template.components.get(node)
        if component is not None:
            compute_name = component.host
        compute = template.computes.get(compute_name)
        if compute is None:
            return None
        rows = sorted(by_compute.get(compute_name, []), key=lambda r: r.vm_id)
        exact = component is None and compute.type == LIST_VALUED_TYPE
        if attribute == "endpoint" and rest[:1] == ("credential",):
            # [X, endpoint, credential, (i), (user|token|token_type)]: how to log in, per VM
            if not exact:
                return None
            creds = [{"user": r.ssh_user, "token_type": "private_key", "token": private_key}
                     for r in rows]  # fmt: skip
            return _dig(creds, rest[1:])
        if attribute in ("ctxt_log", "ansible_output"):
            if not exact or not rows:
                return None
            index, keys = (rest[0], rest[1:]) if rest and isinstance(rest[0], int) else (0, rest)
            if not 0 <= index < len(rows):
                return None
            log = rows[index].log or ""
            return log if attribute == "ctxt_log" else _dig(ansible_output(log), keys)
        values: list[Any]
        if attribute == "public_address":
            values = [r.public_ip for r in rows]
        elif attribute == "private_address":
            values = [r.private_ip for r in rows]
        elif attribute == "ip_address":
            values = [r.public_ip or r.private_ip for r in rows]
        elif attribute == "tosca_id":
            values = [str(r.vm_id) for r in rows]
        elif attribute == "overlay_address":
            values = [overlay_address(template.overlay, r, nodes) for r in rows]
        else:
            return None  # declared by the node's type, with no value Orbis knows (IM: null)
        as_list = exact and attribute != "ip_address"
        if rest and isinstance(rest[0], int):
            return values[rest[0]] if 0 <= rest[0] < len(values) else None
        if as_list:
            return values
        return values[0] if values else None

    return resolve
