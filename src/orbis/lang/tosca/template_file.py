"""IM's `template_file` import: the user's document refines a whole base template.

When `imports` holds exactly one entry, a map with `template_file`, that file is a complete
template (looked up next to the user's file — on the user's machine only, see
orbis.lang.sources —, in $ORBIS_TOSCA_TEMPLATES folders, then among the templates shipped with
Orbis; a URL only through the artifact map's local mirrors — never fetched). On the server a
name is relative and stays inside its folder: no absolute path, no '..', no symlink out.

Merge (IM): user input defaults, or bare values, override imported defaults and extra inputs
are added; user outputs and node templates are added or replace by name; the base's
own imports replace the `template_file` entry. Positions keep their own file, so problems in
the base template point into it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from orbis.lang.errors import Problems, TemplateError
from orbis.lang.sources import RULE, SERVER, Sources, outside_bundle, read_local
from orbis.lang.yaml_positions import PList, PMap, child_pos, duplicate_warnings, load_yaml
from orbis.model.infrastructure import Position

SHIPPED_TEMPLATES = Path(__file__).parent / "templates"


def _entry(doc: PMap) -> tuple[Any, Position] | None:
    imports = doc.get("imports")
    if not isinstance(imports, list) or len(imports) != 1:
        return None
    entry = imports[0]
    if isinstance(entry, dict) and "template_file" in entry:
        return entry["template_file"], child_pos(entry, "template_file", doc.pos) or doc.pos
    return None


def _candidates(name: str, base_dir: Path, sources: Sources) -> list[Path]:
    if "://" in name:
        from orbis.configure.artifacts import local_copy  # the same mirrors as artifacts

        found = local_copy(name)
        return [found] if found else []
    folders = [
        *([base_dir] if sources.local_files else []),
        *(Path(p) for p in os.environ.get("ORBIS_TOSCA_TEMPLATES", "").split(os.pathsep) if p),
        SHIPPED_TEMPLATES,
    ]
    if sources.local_files:
        return [folder / name for folder in folders]
    inside = []
    for folder in folders:  # resolve-and-check: a symlink cannot lead out of the folder
        path = (folder / name).resolve()
        if folder.resolve() in path.parents:
            inside.append(path)
    return inside


def _copy(mapping: PMap) -> PMap:
    out = PMap(mapping.pos)
    out.update(mapping)
    out.key_positions.update(mapping.key_positions)
    out.value_positions.update(mapping.value_positions)
    out.float_texts.update(mapping.float_texts)
    return out


def _set(target: PMap, key: Any, source: PMap, source_key: Any) -> None:
    target[key] = source[source_key]
    target.key_positions[key] = source.key_pos(source_key)
    target.value_positions[key] = source.value_pos(source_key)


def expand_template_file(
    doc: PMap, file: str, problems: Problems, sources: Sources = SERVER
) -> PMap:
    """The merged document, or `doc` itself when it has no template_file import."""
    found = _entry(doc)
    if found is None:
        return doc
    name, pos = found
    if not isinstance(name, str) or not name:
        problems.add(pos, "template_file must be a file name or URL")
        return doc
    refusal = None if sources.local_files or "://" in name else outside_bundle(name)
    if refusal is not None:
        problems.add(pos, f"template_file '{name}' refused: {refusal}", RULE)
        raise TemplateError(problems.problems)
    candidates = _candidates(name, Path(file).resolve().parent, sources)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        hint = (
            "URLs are only read from local mirrors (ORBIS_ARTIFACT_MAP)"
            if "://" in name
            else "next to the template (CLI only), in $ORBIS_TOSCA_TEMPLATES or shipped"
        )
        problems.add(pos, f"template_file '{name}' not found offline", hint)
        raise TemplateError(problems.problems)
    try:
        text = read_local(path)
    except OSError as exc:
        problems.add(pos, f"template_file '{name}' cannot be read: {exc}")
        raise TemplateError(problems.problems) from None
    base = load_yaml(text, str(path))
    for repeated in duplicate_warnings(base):
        problems.warn(repeated.position, repeated.message)
    if not isinstance(base, PMap):
        problems.add(pos, f"template_file '{name}' is not a TOSCA template")
        raise TemplateError(problems.problems)
    return _merge(base, doc)


def _merge(base: PMap, user: PMap) -> PMap:
    out = _copy(base)
    for key in user:
        if key not in ("imports", "topology_template"):
            _set(out, key, user, key)
    if "imports" not in base:
        out.pop("imports", None)
    topo_user = user.get("topology_template")
    topo_base = base.get("topology_template")
    if not isinstance(topo_user, PMap):
        return out
    if not isinstance(topo_base, PMap):
        _set(out, "topology_template", user, "topology_template")
        return out
    topo = _copy(topo_base)
    out["topology_template"] = topo
    for section in topo_user:
        mine = topo_user[section]
        theirs = topo.get(section)
        if section == "inputs" and isinstance(mine, PMap) and isinstance(theirs, PMap):
            topo[section] = _merge_inputs(theirs, mine)
        elif isinstance(mine, PMap) and isinstance(theirs, PMap):
            merged = _copy(theirs)
            for key in mine:
                _set(merged, key, mine, key)  # outputs, node_templates...: replace by name
            topo[section] = merged
        elif isinstance(mine, PList) and isinstance(theirs, PList):
            merged_list = PList(theirs.pos)
            merged_list.extend([*theirs, *mine])
            merged_list.item_positions = [*theirs.item_positions, *mine.item_positions]
            topo[section] = merged_list
        else:
            _set(topo, section, topo_user, section)
    return out


def _merge_inputs(base: PMap, user: PMap) -> PMap:
    out = _copy(base)
    for name in user:
        value = user[name]
        if name not in base or not isinstance(base[name], PMap):
            if isinstance(value, PMap):
                _set(out, name, user, name)
            else:  # a bare value: an input with that default
                definition = PMap(user.value_pos(name))
                definition["default"] = value
                definition.value_positions["default"] = user.value_pos(name)
                definition["type"] = _type_of(value)
                out[name] = definition
                out.key_positions[name] = user.key_pos(name)
            continue
        definition = _copy(base[name])
        if isinstance(value, PMap):
            if "default" in value:
                _set(definition, "default", value, "default")
        else:
            definition["default"] = value
            definition.value_positions["default"] = user.value_pos(name)
        out[name] = definition
    return out


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "list"
    return "map" if isinstance(value, dict) else "string"
