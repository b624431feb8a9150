"""IM's merge of an updated TOSCA document into the stored one (reference: tosca-dialect §4).

Maps merge by key, lists merge by index (shared items merged, extra items appended; a shorter
new list does not shrink the old one), scalars are replaced. So a node cannot be removed by
leaving it out: its count is set to 0.
"""

from __future__ import annotations

from typing import Any

import yaml

from orbis.lang.limits import safe_load_bounded


def merge_documents(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for key, value in new.items():
            merged[key] = merge_documents(old[key], value) if key in old else value
        return merged
    if isinstance(old, list) and isinstance(new, list):
        merged_list = [merge_documents(o, n) for o, n in zip(old, new, strict=False)]
        if len(new) > len(old):
            merged_list += new[len(old) :]
        else:
            merged_list += old[len(new) :]
        return merged_list
    return new


def merge_tosca(stored: str, update: str) -> str:
    """The stored template with the update merged in, as YAML text."""
    merged = merge_documents(safe_load_bounded(stored, "stored") or {},
                             safe_load_bounded(update, "update") or {})
    return yaml.safe_dump(merged, sort_keys=False, allow_unicode=True, width=100)


def count_patch(node: str, count: int) -> str:
    """A TOSCA update that sets one node's instance count."""
    doc = {"topology_template": {"node_templates": {node: {
        "capabilities": {"scalable": {"properties": {"count": count}}}}}}}  # fmt: skip
    return yaml.safe_dump(doc, sort_keys=False)
