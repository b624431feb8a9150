"""Preparing a template for the server: input values and local playbooks travel inside it.

The server cannot see the user's files, and IM's API carries only the template. So `-i` values
become the inputs' defaults (how IM reads input values), playbooks referenced by a relative
path are inlined as text (an Orbis extension: a multi-line implementation is the playbook) in
node, relationship and type operations alike (orbis.lang.recipe_paths), and
local type imports are merged into the template's own type sections (the server refuses local
names: orbis.lang.sources); their URL imports are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orbis.lang.errors import Problems
from orbis.lang.recipe_paths import rewrite_paths
from orbis.lang.sources import CLIENT, read_local
from orbis.lang.tosca.template_file import expand_template_file
from orbis.lang.yaml_positions import load_yaml, plain
from orbis.model.infrastructure import Template

TYPE_SECTIONS = (
    "data_types", "node_types", "relationship_types", "capability_types", "artifact_types",
    "interface_types", "policy_types", "group_types", "repositories",
)  # fmt: skip


def _is_local(entry: Any) -> bool:
    return isinstance(entry, str) and ("://" not in entry or entry.startswith("file://"))


def _local_template_file(doc: Any, folder: Path) -> bool:
    imports = doc.get("imports") if isinstance(doc, dict) else None
    if not isinstance(imports, list) or len(imports) != 1 or not isinstance(imports[0], dict):
        return False
    name = imports[0].get("template_file")
    return isinstance(name, str) and "://" not in name and (folder / name).is_file()


def _inline_imports(doc: Any, folder: Path, seen: set[Path]) -> None:
    """Replace local imports by their types (the template's own definitions win)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("imports"), list):
        return
    kept: list[Any] = []
    for entry in doc["imports"]:
        if not _is_local(entry):
            kept.append(entry)
            continue
        file = (folder / Path(entry.removeprefix("file://")).expanduser()).resolve()
        if file in seen:
            continue
        seen.add(file)
        types = yaml.safe_load(read_local(file))  # the loader has already read it once
        _inline_imports(types, file.parent, seen)
        if not isinstance(types, dict):
            continue
        kept.extend(e for e in types.get("imports") or [] if e not in kept)
        for section in TYPE_SECTIONS:
            if isinstance(types.get(section), dict):
                mine = doc.setdefault(section, {})
                for name, definition in types[section].items():
                    mine.setdefault(name, definition)
    if kept:
        doc["imports"] = kept
    else:
        doc.pop("imports")


def bundle(
    path: Path, template: Template, overrides: dict[str, str], text: str | None = None
) -> str:
    """`text` (e.g. a composed template) replaces the file's content; relative playbook paths
    are still resolved from `path`'s folder."""
    source = path.read_text() if text is None else text
    doc = yaml.safe_load(source)
    folder = path.parent
    if _local_template_file(doc, folder):  # the base is on this machine: send the merge
        merged = expand_template_file(load_yaml(source, str(path)), str(path), Problems(), CLIENT)
        doc = plain(merged)
    _inline_imports(doc, folder, set())
    inputs = (doc.get("topology_template") or {}).get("inputs") or {}
    for name in overrides:
        if name in inputs and isinstance(inputs[name], dict):
            inputs[name]["default"] = template.inputs.get(name)
    # relative to the template, imported types' too: where the loader looked for them
    rewrite_paths(doc, lambda value: _inline_path(value, folder))
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def _inline_path(value: str, folder: Path) -> str:
    if "\n" in value or "://" in value or not value.endswith((".yml", ".yaml")):
        return value
    candidate = folder / value
    if candidate.is_file():
        text = candidate.read_text()
        return text if "\n" in text else text + "\n"
    return value
