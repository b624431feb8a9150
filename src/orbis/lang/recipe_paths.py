"""Every place a TOSCA document names a recipe or artifact file, rewritten by one function.

The CLI inlines local playbooks (cli/bundle.py) and composition rebases an add-on's relative
paths onto the base's folder (lang/compose.py); both must reach the same places, or one kind
of operation silently stays a path the server cannot read:
  - node templates: interface operations and artifacts;
  - requirements written with an inline relationship: its interface operations;
  - topology_template.relationship_templates: their interface operations;
  - node_types / relationship_types (the template's own or a local import's): interface
    operations and node type artifacts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Rewrite = Callable[[str], str]
_NOT_OPERATIONS = ("type", "inputs", "description", "derived_from", "notifications")


def _operation(op: Any, rewrite: Rewrite) -> Any:
    if isinstance(op, str):
        return rewrite(op)
    if isinstance(op, dict):
        impl = op.get("implementation")
        if isinstance(impl, str):
            op["implementation"] = rewrite(impl)
        elif isinstance(impl, dict):  # {primary: path} or an artifact definition {file: path}
            for key in ("primary", "file"):
                if isinstance(impl.get(key), str):
                    impl[key] = rewrite(impl[key])
    return op


def _interfaces(interfaces: Any, rewrite: Rewrite) -> None:
    for interface in interfaces.values() if isinstance(interfaces, dict) else ():
        if not isinstance(interface, dict):
            continue
        for name, op in list(interface.items()):
            if name not in _NOT_OPERATIONS:
                interface[name] = _operation(op, rewrite)


def _artifacts(artifacts: Any, rewrite: Rewrite) -> None:
    for name, artifact in list(artifacts.items()) if isinstance(artifacts, dict) else ():
        if isinstance(artifact, str):
            artifacts[name] = rewrite(artifact)
        elif isinstance(artifact, dict) and isinstance(artifact.get("file"), str):
            artifact["file"] = rewrite(artifact["file"])


def _requirements(requirements: Any, rewrite: Rewrite) -> None:
    for entry in requirements if isinstance(requirements, list) else ():
        for value in entry.values() if isinstance(entry, dict) else ():
            relationship = value.get("relationship") if isinstance(value, dict) else None
            if isinstance(relationship, dict):
                _interfaces(relationship.get("interfaces"), rewrite)


def rewrite_types(doc: Any, rewrite: Rewrite) -> None:
    """Apply `rewrite` to the recipe paths of the document's node and relationship types."""
    if not isinstance(doc, dict):
        return
    for section in ("node_types", "relationship_types"):
        types = doc.get(section)
        for definition in types.values() if isinstance(types, dict) else ():
            if isinstance(definition, dict):
                _interfaces(definition.get("interfaces"), rewrite)
                _artifacts(definition.get("artifacts"), rewrite)


def rewrite_topology(doc: Any, rewrite: Rewrite) -> None:
    """Apply `rewrite` to the recipe paths of the document's node and relationship templates."""
    topology = doc.get("topology_template") if isinstance(doc, dict) else None
    if not isinstance(topology, dict):
        return
    nodes = topology.get("node_templates")
    for node in nodes.values() if isinstance(nodes, dict) else ():
        if isinstance(node, dict):
            _interfaces(node.get("interfaces"), rewrite)
            _artifacts(node.get("artifacts"), rewrite)
            _requirements(node.get("requirements"), rewrite)
    relationships = topology.get("relationship_templates")
    for relationship in relationships.values() if isinstance(relationships, dict) else ():
        if isinstance(relationship, dict):
            _interfaces(relationship.get("interfaces"), rewrite)


def rewrite_paths(doc: Any, rewrite: Rewrite) -> None:
    """Apply `rewrite` to every recipe or artifact path of a document (types and topology)."""
    rewrite_types(doc, rewrite)
    rewrite_topology(doc, rewrite)
