"""Preparing a template for the server: input values and local playbooks travel inside it.

The server cannot see the user's files, and IM's API carries only the template. So `-i` values
become the inputs' defaults (how IM reads input values) and playbooks referenced by a relative
path are inlined as text (an Orbis extension: a multi-line implementation is the playbook).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orbis.model.infrastructure import Template


def bundle(
    path: Path, template: Template, overrides: dict[str, str], text: str | None = None
) -> str:
    """`text` (e.g. a composed template) replaces the file's content; relative playbook paths
    are still resolved from `path`'s folder."""
    doc = yaml.safe_load(path.read_text() if text is None else text)
    folder = path.parent
    inputs = (doc.get("topology_template") or {}).get("inputs") or {}
    for name in overrides:
        if name in inputs and isinstance(inputs[name], dict):
            inputs[name]["default"] = template.inputs.get(name)
    nodes = (doc.get("topology_template") or {}).get("node_templates") or {}
    for node in nodes.values():
        if not isinstance(node, dict):
            continue
        for interface in (node.get("interfaces") or {}).values():
            if isinstance(interface, dict):
                for op_name, op in list(interface.items()):
                    interface[op_name] = _inline(op, folder)
        for artifact in (node.get("artifacts") or {}).values():
            if isinstance(artifact, dict) and isinstance(artifact.get("file"), str):
                artifact["file"] = _inline_path(artifact["file"], folder)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def _inline(op: Any, folder: Path) -> Any:
    if isinstance(op, str):
        return _inline_path(op, folder)
    if isinstance(op, dict):
        impl = op.get("implementation")
        if isinstance(impl, str):
            op["implementation"] = _inline_path(impl, folder)
        elif isinstance(impl, dict) and isinstance(impl.get("primary"), str):
            impl["primary"] = _inline_path(impl["primary"], folder)
    return op


def _inline_path(value: str, folder: Path) -> str:
    if "\n" in value or "://" in value or not value.endswith((".yml", ".yaml")):
        return value
    candidate = folder / value
    if candidate.is_file():
        text = candidate.read_text()
        return text if "\n" in text else text + "\n"
    return value
