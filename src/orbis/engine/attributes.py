"""Values of `get_attribute` once nodes exist (addresses, ids, names)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orbis.model.infrastructure import Template
from orbis.store.schema import NodeRow

LIST_VALUED_TYPE = "tosca.nodes.indigo.Compute"  # IM gives lists only for this exact type


def attribute_resolver(
    template: Template, nodes: list[NodeRow], *, self_node: str | None = None
) -> Callable[[str, str, tuple[Any, ...]], Any]:
    """A callback for `orbis.lang.functions.evaluate` reading the current nodes."""
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
        values: list[Any]
        if attribute == "public_address":
            values = [r.public_ip for r in rows]
        elif attribute == "private_address":
            values = [r.private_ip for r in rows]
        elif attribute == "ip_address":
            values = [r.public_ip or r.private_ip for r in rows]
        elif attribute == "tosca_id":
            values = [str(r.vm_id) for r in rows]
        else:
            return None
        as_list = (
            component is None and compute.type == LIST_VALUED_TYPE and attribute != "ip_address"
        )
        if rest and isinstance(rest[0], int):
            return values[rest[0]] if 0 <= rest[0] < len(values) else None
        if as_list:
            return values
        return values[0] if values else None

    return resolve
