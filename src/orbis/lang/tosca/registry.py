"""TOSCA type definitions: the normative set, the shipped custom type sets, inheritance lookups.

Type files are parsed once per process (they are big: INDIGO's is 100 kB) and registries built
only from shipped sets are cached too, so their inheritance lookups stay warm across loads.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

TYPES_DIR = Path(__file__).parent / "types"
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SECTIONS: dict[str, str] = {  # section -> prefix allowed to be omitted ("Compute")
    "node_types": "tosca.nodes.",
    "capability_types": "tosca.capabilities.",
    "relationship_types": "tosca.relationships.",
    "data_types": "tosca.datatypes.",
    "artifact_types": "tosca.artifacts.",
    "interface_types": "tosca.interfaces.",
    "policy_types": "tosca.policies.",
    "group_types": "tosca.groups.",
}

SHIPPED_FILES: dict[str, str] = {
    "normative": "normative.yaml",
    "indigo": "indigo_custom_types.yaml",
    "grycap": "grycap_custom_types.yaml",
    "ec3": "ec3_custom_types.yaml",
    "ec3_ha": "ec3_ha_custom_types.yaml",
}

TypeSet = dict[str, dict[str, Any]]  # section -> type name -> definition


def type_set_from(document: Any) -> TypeSet:
    """The type sections of a parsed types document (anything else is ignored)."""
    doc = document if isinstance(document, dict) else {}
    return {s: dict(doc[s]) for s in SECTIONS if isinstance(doc.get(s), dict)}


@functools.cache
def shipped_set(key: str) -> TypeSet:
    """One of the shipped type files, parsed once per process."""
    text = (TYPES_DIR / SHIPPED_FILES[key]).read_text(encoding="utf-8")
    return type_set_from(yaml.load(text, Loader=_Loader))


def shipped_for_url(url: str) -> str | None:
    """The shipped set a well-known custom_types.yaml import (any branch/tag) stands for."""
    u = url.strip().lower().rstrip("/")
    if not u.endswith(("custom_types.yaml", "custom_types.yml")):
        return None
    if "indigo-dc/tosca-types" in u:
        return "indigo"
    if "grycap/ec3" in u:
        # the tosca_ha branch has its own (older) set; raw, blob and refs/heads URLs alike
        return "ec3_ha" if re.search(r"[/@]tosca_ha/", u) else "ec3"
    if "grycap/tosca" in u:
        return "grycap"
    return None


def _merge_defs(parent: dict[str, Any], child: Any) -> dict[str, Any]:
    """Merge two maps of definitions: a child entry refines its parent's, field by field."""
    out = dict(parent)
    for name, definition in (child or {}).items() if isinstance(child, dict) else ():
        old = out.get(name)
        if isinstance(old, dict) and isinstance(definition, dict):
            out[name] = {**old, **definition}
        else:
            out[name] = definition
    return out


class Registry:
    """All types visible to one template; later sets override earlier ones."""

    def __init__(self, sets: Sequence[TypeSet]) -> None:
        self.defs: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
        for type_set in sets:
            for section, types in type_set.items():
                self.defs[section].update(types)
        self._chains: dict[tuple[str, str], list[str]] = {}
        self._merged: dict[tuple[str, str, str], dict[str, Any]] = {}

    def resolve(self, section: str, name: Any) -> str | None:
        """Full name of a type (short normative names allowed), or None if unknown."""
        if not isinstance(name, str):
            return None
        types = self.defs[section]
        if name in types:
            return name
        full = SECTIONS[section] + name
        return full if full in types else None

    def names(self, section: str) -> list[str]:
        return list(self.defs[section])

    def chain(self, section: str, name: str) -> list[str]:
        """The type followed by its ancestors (derived_from), stopping on unknown or cycles."""
        key = (section, name)
        if key not in self._chains:
            out: list[str] = []
            current: str | None = self.resolve(section, name)
            while current and current not in out:
                out.append(current)
                current = self.resolve(section, self.defs[section][current].get("derived_from"))
            self._chains[key] = out
        return self._chains[key]

    def derives(self, section: str, name: str, base: str) -> bool:
        return base in self.chain(section, name)

    def merged(self, section: str, name: str, field: str) -> dict[str, Any]:
        """A map field (properties, capabilities, interfaces, ...) merged down the type chain."""
        key = (section, name, field)
        if key not in self._merged:
            out: dict[str, Any] = {}
            for type_name in reversed(self.chain(section, name)):
                value = self.defs[section][type_name].get(field)
                if field == "interfaces" and isinstance(value, dict):
                    for iface, ops in value.items():
                        base = out.get(iface)
                        if isinstance(base, dict) and isinstance(ops, dict):
                            out[iface] = {**base, **ops}  # operations refine per name
                        else:
                            out[iface] = ops
                else:
                    out = _merge_defs(out, value)
            self._merged[key] = out
        return self._merged[key]

    def requirements(self, node_type: str) -> dict[str, dict[str, Any]]:
        """Requirement definitions of a node type by name: {capability, node, relationship}."""
        key = ("node_types", node_type, "requirements")
        if key not in self._merged:
            out: dict[str, dict[str, Any]] = {}
            for type_name in reversed(self.chain("node_types", node_type)):
                for item in self.defs["node_types"][type_name].get("requirements") or []:
                    for req_name, definition in item.items() if isinstance(item, dict) else ():
                        if isinstance(definition, str):  # short form: the capability type
                            definition = {"capability": definition}
                        out[req_name] = dict(definition or {})
            self._merged[key] = out
        return self._merged[key]

    def capability_properties(self, cap_type: str) -> dict[str, Any]:
        return self.merged("capability_types", cap_type, "properties")


@functools.lru_cache(maxsize=16)
def shipped_registry(keys: tuple[str, ...]) -> Registry:
    """Registry of normative + the given shipped sets (cached: lookups stay memoised)."""
    return Registry([shipped_set("normative"), *(shipped_set(k) for k in keys)])


def build_registry(keys: Sequence[str], extra: Sequence[TypeSet]) -> Registry:
    """Registry for one template: shipped sets in import order, then local/template types."""
    if not extra:
        return shipped_registry(tuple(keys))
    return Registry([shipped_set("normative"), *(shipped_set(k) for k in keys), *extra])
