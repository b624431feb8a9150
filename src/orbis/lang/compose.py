"""Composing templates the IM Dashboard way: a base template plus add-ons.

An add-on names its base in `metadata.parents` (a base may offer its add-ons in
`metadata.childs`); a "link" card (`metadata.link: {parent, childs}`) stands for its parent with
those add-ons. Composition merges, in the order given, `inputs`, `node_templates`, `outputs`,
`groups`, `policies`, `relationship_templates`, `imports` and `repositories` into one template,
and keeps `metadata.tabs` (with `enabled_by` and the other per-input options) for forms.

As the Dashboard does, an add-on's input, node template or output replaces the base's of the
same name whole, in the base's place (the catalogue's elastic variants redefine worker nodes;
VM add-ons redefine inputs for other defaults); each replacement is reported as a warning naming
both places. A group, policy or repository defined differently in two files (sections the
Dashboard drops from add-ons and Orbis merges) is refused, naming both places.

The merged document is built from the position-aware trees of each file, so validating it
reports problems at the original file:line:col. The merged YAML *text* (what is sent to the
server) comes with a `SourceMap` from its lines back to the originals.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orbis.lang.errors import Problem, Problems, TemplateError
from orbis.lang.recipe_paths import rewrite_paths
from orbis.lang.yaml_positions import PList, PMap, duplicate_warnings, load_yaml, plain
from orbis.model.infrastructure import Position, Template

MAP_SECTIONS = ("inputs", "node_templates", "outputs", "groups", "relationship_templates")
MERGED_NAME = "<composed>"  # file name of positions in the merged text


@dataclass
class SourceMap:
    """Where the parts of a composed template come from.

    `document` is the merged tree whose positions point at the original files (load it with
    `orbis.lang.tosca.loader.load_document` to validate with original positions); `origins`
    maps section → name → file that defined it; `locate` maps a line:col of the merged text
    back to the original file:line:col.
    """

    base: str
    addons: list[str]
    document: PMap
    origins: dict[str, dict[str, str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _marks: list[tuple[int, int]] = field(default_factory=list, repr=False)
    _targets: list[Position] = field(default_factory=list, repr=False)

    @property
    def files(self) -> list[str]:
        return [self.base, *self.addons]

    def locate(self, line: int, col: int) -> Position | None:
        """The original position of merged-text line:col (the nearest mark at or before it)."""
        index = bisect.bisect_right(self._marks, (line, col)) - 1
        return self._targets[index] if index >= 0 else None

    def remap(self, error: TemplateError) -> TemplateError:
        """The same problems, with positions in the merged text moved to the original files."""
        problems = []
        for problem in error.problems:
            pos = problem.position
            if pos is not None and pos.file == MERGED_NAME:
                pos = self.locate(pos.line, pos.col) or pos
            problems.append(Problem(pos, problem.message, problem.hint))
        return TemplateError(problems)


def compose(base_path: str | Path, addon_paths: Sequence[str | Path] = ()) -> tuple[str, SourceMap]:
    """Merge a base template with add-ons into one template text. Raises TemplateError (with
    the file:line:col of each conflict) when they do not fit together."""
    composer = _Composer(Path(base_path), [Path(p) for p in addon_paths])
    document = composer.run()
    text = yaml.safe_dump(plain(document), sort_keys=False, allow_unicode=True, width=100)
    smap = SourceMap(
        base=str(composer.base),
        addons=[str(p) for p in composer.addons],
        document=document,
        origins=composer.origins,
        warnings=list(composer.problems.warnings),
    )
    _build_marks(smap, load_yaml(text, MERGED_NAME), document)
    return text, smap


def load_composed(
    base_path: str | Path,
    addon_paths: Sequence[str | Path] = (),
    inputs: dict[str, Any] | None = None,
) -> tuple[Template, str, SourceMap]:
    """Compose and validate: the model (problems at original positions), text and map."""
    from orbis.lang.sources import CLIENT  # composing is the CLI's: the user's own files
    from orbis.lang.tosca.loader import load_document

    text, smap = compose(base_path, addon_paths)
    template = load_document(smap.document, smap.base, inputs or {}, CLIENT)
    template.warnings = [*smap.warnings, *template.warnings]
    return template, text, smap


def link_of(path: str | Path) -> tuple[Path, list[Path]] | None:
    """(parent, childs) of a Dashboard link card, or None for an ordinary template."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    link = meta.get("link") if isinstance(meta, dict) else None
    if not isinstance(link, dict) or not isinstance(link.get("parent"), str):
        return None
    childs = link.get("childs") or []
    return path.parent / link["parent"], [path.parent / str(c) for c in childs]


def addons_of(path: str | Path) -> tuple[list[str], list[str]]:
    """(parents, childs) a template declares in its metadata (ids as written)."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return [], []
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    if not isinstance(meta, dict):
        return [], []

    def names(key: str) -> list[str]:
        value = meta.get(key)
        return [str(v) for v in value] if isinstance(value, list) else []

    return names("parents"), names("childs")


# --------------------------------------------------------------------------------------------


def _unshipped_url(target: Any) -> bool:
    """True for an http(s) URL of a type set Orbis does not ship (it would be fetched)."""
    from orbis.lang.tosca.registry import shipped_for_url

    if not isinstance(target, str) or not target.lower().startswith(("http://", "https://")):
        return False
    return shipped_for_url(target) is None


def _pos_text(pos: Position | None) -> str:
    return str(pos) if pos else "?"


def _key_pos(mapping: Any, key: Any) -> Position | None:
    return mapping.key_pos(key) if isinstance(mapping, PMap) else None


def _section(doc: PMap, *path: str) -> Any:
    value: Any = doc
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


# sections where an add-on's entry replaces the base's same-named one whole (the Dashboard's rule)
REPLACED_WHOLE = {"inputs": "input", "node_templates": "node", "outputs": "output"}


class _Composer:
    def __init__(self, base: Path, addons: list[Path]) -> None:
        self.problems = Problems()
        link = link_of(base) if base.is_file() else None
        if link is not None:  # a link card: its parent, its childs, then any given add-ons
            base, linked = link
            addons = [*linked, *addons]
        self.base = base
        self.addons = addons
        self.origins: dict[str, dict[str, str]] = {}
        self.addon_docs: list[tuple[Path, PMap]] = []
        # imports as (entry, position): the base's (None until an add-on brings its own) and the
        # ones add-ons add, which go first so that the base's type definitions win
        self._base_imports: list[tuple[Any, Position]] | None = None
        self._addon_imports: list[tuple[Any, Position]] = []

    def run(self) -> PMap:
        base_doc = self._load(self.base)
        meta = base_doc.get("metadata")
        if isinstance(meta, dict) and meta.get("parents"):
            self.problems.add(
                _key_pos(meta, "parents"),
                f"{self.base.name} is an add-on (metadata.parents: {plain(meta['parents'])}), "
                "not a base template",
                f"deploy one of its parents with --with {self.base}",
            )
        seen: dict[Path, Path] = {}
        for addon in self.addons:
            if addon.resolve() in seen or addon.resolve() == self.base.resolve():
                self.problems.add(
                    Position(str(addon), 1, 1), f"{addon} is given twice", "list it once"
                )
            seen[addon.resolve()] = addon
        self.problems.check()

        merged = PMap(base_doc.pos)
        for key, value in base_doc.items():  # base first: its header, imports, metadata...
            merged[key] = value
            merged.key_positions[key] = base_doc.key_pos(key)
            merged.value_positions[key] = base_doc.value_pos(key)
        topology = self._fresh_map(merged, "topology_template", base_doc.pos)
        for name in MAP_SECTIONS:
            section = topology.get(name)
            if isinstance(section, dict):
                for key in section:
                    self.origins.setdefault(name, {})[str(key)] = str(self.base)
        descriptions = [str(base_doc.get("description") or "").strip()]
        for addon in self.addons:
            doc = self._load(addon)
            self.addon_docs.append((addon, doc))
            self._check_parent(addon, doc)
            self._rebase(doc, addon.parent)
            self._merge(merged, topology, doc, addon)
            descriptions.append(str(doc.get("description") or "").strip())
        if self.addons:
            merged["description"] = "\n\n".join(d for d in descriptions if d)
            self._metadata(merged)
        self._check_tabs(merged)
        self.problems.check()
        return merged

    # ---- loading and checks ----------------------------------------------------------------

    def _load(self, path: Path) -> PMap:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise TemplateError([Problem(None, f"cannot read template {path}: {reason}")]) from None
        doc = load_yaml(text, str(path))
        if not isinstance(doc, PMap):
            raise TemplateError(
                [Problem(Position(str(path), 1, 1), "a TOSCA template must be a YAML mapping")]
            )
        for repeated in duplicate_warnings(doc):
            self.problems.warn(repeated.position, repeated.message)
        return doc

    def _check_parent(self, addon: Path, doc: PMap) -> None:
        meta = doc.get("metadata")
        parents = meta.get("parents") if isinstance(meta, dict) else None
        if not parents and self._offered(addon):
            return  # the base offers it in its childs: the Dashboard composes it, parents or not
        if not parents:
            where = _key_pos(doc, "metadata") if isinstance(meta, dict) else doc.pos
            self.problems.add(
                where,
                f"{addon.name} is not an add-on: it has no metadata.parents",
                f"add 'parents: [{self.base.name}]' to its metadata, or deploy it on its own",
            )
            return
        names = [str(p) for p in parents] if isinstance(parents, list) else [str(parents)]
        if not any(self._is_base(addon, name) for name in names) and not self._offered(addon):
            self.problems.add(
                meta.value_pos("parents") if isinstance(meta, PMap) else doc.pos,
                f"{addon.name} is an add-on of {', '.join(names)}, not of {self.base.name}",
                f"compose it with one of its parents, or add {self.base.name} to its parents",
            )

    def _offered(self, addon: Path) -> bool:
        """The base offers the add-on in its `metadata.childs` (the Dashboard's picker lists a
        base's childs whatever their `parents` say: oscar.yaml offers prometheus.yaml, whose
        parents name only kubernetes.yaml)."""
        base_dir = self.base.parent.resolve()
        return any(
            (base_dir / child).resolve() == addon.resolve() or Path(child).name == addon.name
            for child in addons_of(self.base)[1]
        )

    def _is_base(self, addon: Path, name: str) -> bool:
        # Dashboard ids are paths relative to the catalogue root, which may be an ancestor of the
        # add-on's folder; a same file name is accepted too (catalogues get copied around).
        target = self.base.resolve()
        for folder in [addon.parent, *addon.parent.parents][:4]:
            if (folder / name).resolve() == target:
                return True
        return Path(name).name == self.base.name

    # ---- paths -----------------------------------------------------------------------------

    def _rebase(self, doc: PMap, folder: Path) -> None:
        """Relative playbook/artifact/import paths of an add-on, made relative to the base's
        folder (where the loader and `orbis deploy`'s bundling resolve them)."""
        rewrite_paths(doc, lambda value: self._path(value, folder))
        imports = doc.get("imports")
        if not isinstance(imports, list):
            return
        for i, entry in enumerate(imports):
            if isinstance(entry, str):
                imports[i] = self._path(entry, folder)
            elif isinstance(entry, dict) and len(entry) == 1:
                key, value = next(iter(entry.items()))
                if isinstance(value, str):
                    entry[key] = self._path(value, folder)

    def _path(self, value: str, folder: Path) -> str:
        if "\n" in value or "://" in value or os.path.isabs(value):
            return value
        candidate = folder / value
        if not candidate.is_file():
            return value  # a role name, an artifact name, or missing (the loader warns)
        return os.path.relpath(candidate.resolve(), self.base.parent.resolve())

    # ---- merging ---------------------------------------------------------------------------

    def _fresh_map(self, parent: PMap, key: str, pos: Position) -> PMap:
        """A copy of parent[key] (a mapping) that can take new entries without touching the
        file's own tree."""
        old = parent.get(key)
        new = PMap(old.pos if isinstance(old, PMap) else pos)
        if isinstance(old, dict):
            for k, v in old.items():
                new[k] = v
                if isinstance(old, PMap):
                    new.key_positions[k] = old.key_pos(k)
                    new.value_positions[k] = old.value_pos(k)
        parent[key] = new
        return new

    def _merge(self, merged: PMap, topology: PMap, doc: PMap, addon: Path) -> None:
        theirs = doc.get("topology_template")
        if isinstance(theirs, PMap):
            for name in MAP_SECTIONS:
                if isinstance(theirs.get(name), dict):
                    self._merge_map(topology, name, theirs, addon)
                elif theirs.get(name) is not None:
                    self.problems.add(
                        _key_pos(theirs, name), f"'{name}' must be a mapping in {addon.name}"
                    )
            if theirs.get("policies") is not None:
                self._merge_policies(topology, theirs, addon)
        if isinstance(doc.get("repositories"), dict):
            self._merge_map(merged, "repositories", doc, addon)
        self._merge_imports(merged, doc, addon)
        version, mine = (
            doc.get("tosca_definitions_version"),
            merged.get("tosca_definitions_version"),
        )
        if version and version != mine:
            self.problems.warn(
                doc.value_pos("tosca_definitions_version"),
                f"{addon.name} is written for {version}; the composed template keeps {mine}",
            )

    def _merge_map(self, into: PMap, name: str, theirs: PMap, addon: Path) -> None:
        target = self._fresh_map(into, name, theirs.pos)
        source = theirs[name]
        origins = self.origins.setdefault(name, {})
        for key, value in source.items():
            pos = _key_pos(source, key)
            if key in target:
                if plain(target[key]) == plain(value):
                    continue  # the same definition twice (e.g. a shared input): fine
                first = target.key_pos(key)
                if name in REPLACED_WHOLE:
                    # the IM Dashboard's merge: the add-on's definition replaces the base's
                    # whole (elastic variants redefine worker nodes, VM add-ons inputs)
                    self.problems.warn(
                        pos,
                        f"{REPLACED_WHOLE[name]} '{key}' redefined by {addon.name}: it replaces "
                        f"the one at {_pos_text(first)} whole",
                    )
                else:
                    self.problems.add(
                        pos,
                        f"{name.rstrip('s')} '{key}' is defined differently in {addon.name} and "
                        f"at {_pos_text(first)}",
                        "rename one, or make both definitions identical",
                    )
                    continue
            target[key] = value
            if pos is not None:
                target.key_positions[key] = pos
            if isinstance(source, PMap):
                target.value_positions[key] = source.value_pos(key)
            origins[str(key)] = str(addon)

    def _merge_policies(self, topology: PMap, theirs: PMap, addon: Path) -> None:
        # TOSCA 1.0 writes policies as a list of one-key maps; some templates use a map.
        def items(value: Any) -> list[tuple[str, Any, Position | None]]:
            if isinstance(value, dict):
                return [(str(k), v, _key_pos(value, k)) for k, v in value.items()]
            out = []
            for i, entry in enumerate(value if isinstance(value, list) else []):
                pos = value.item_pos(i) if isinstance(value, PList) else None
                if isinstance(entry, dict) and len(entry) == 1:
                    name, body = next(iter(entry.items()))
                    out.append((str(name), body, _key_pos(entry, name) or pos))
            return out

        mine = topology.get("policies")
        merged = items(mine)
        known = {name: (body, pos) for name, body, pos in merged}
        for name, body, pos in items(theirs.get("policies")):
            if name in known:
                if plain(known[name][0]) != plain(body):
                    self.problems.add(
                        pos,
                        f"policy '{name}' is defined differently in {addon.name} and at "
                        f"{_pos_text(known[name][1])}",
                        "rename one, or make both definitions identical",
                    )
                continue
            known[name] = (body, pos)
            merged.append((name, body, pos))
            self.origins.setdefault("policies", {})[name] = str(addon)
        if isinstance(mine, dict) and isinstance(theirs.get("policies"), dict):
            result: Any = PMap(mine.pos if isinstance(mine, PMap) else theirs.pos)
            for name, body, pos in merged:
                result[name] = body
                if pos is not None:
                    result.key_positions[name] = pos
        else:
            result = PList(mine.pos if isinstance(mine, PList | PMap) else theirs.pos)
            for name, body, pos in merged:
                entry = PMap(pos or theirs.pos)
                entry[name] = body
                if pos is not None:
                    entry.key_positions[name] = pos
                result.append(entry)
                result.item_positions.append(pos or theirs.pos)
        topology["policies"] = result

    def _merge_imports(self, merged: PMap, doc: PMap, addon: Path) -> None:
        """Union of the imports, each URL/file once, the base's last: later type sets override
        earlier ones, so the base's definitions win over an add-on's same-named types (the
        Dashboard keeps only the base's imports; an add-on importing INDIGO's set must not
        replace the grycap Kubernetes/Slurm types its base uses). Types only an add-on's
        import defines still resolve when it is a shipped type set or a file; an add-on's URL
        of any other type set (a fork's, the catalogue's ARC and Jupyter add-ons) is dropped
        with a warning when the base has imports, as the Dashboard drops it: IM never fetches
        it, and the base's types are the ones IM parses the merge with."""
        theirs = doc.get("imports")
        if not isinstance(theirs, list) or not theirs:
            return
        mine = merged.get("imports")
        if self._base_imports is None:
            self._base_imports = []
            for i, entry in enumerate(mine if isinstance(mine, list) else []):
                pos = mine.item_pos(i) if isinstance(mine, PList) else doc.pos
                self._base_imports.append((entry, pos))

        def target(entry: Any) -> Any:  # the URL/file, whatever name it is imported under
            if isinstance(entry, dict) and len(entry) == 1 and "file" not in entry:
                return plain(next(iter(entry.values())))
            return plain(entry)

        have = [target(e) for e, _ in [*self._addon_imports, *self._base_imports]]
        added = []
        for i, entry in enumerate(theirs):
            if target(entry) in have:
                continue
            pos = theirs.item_pos(i) if isinstance(theirs, PList) else doc.pos
            if self._base_imports and _unshipped_url(target(entry)):
                # the Dashboard sends IM only the base's imports: IM never reads this one
                self.problems.warn(pos, f"{addon.name}: import '{target(entry)}' dropped: the "
                                   "IM Dashboard keeps only the base's imports, and Orbis "
                                   "ships no copy of this type set")  # fmt: skip
                continue
            self._addon_imports.append((entry, pos))
            have.append(target(entry))
            added.append(pos)
        if added and self._base_imports:
            self.problems.warn(
                added[0],
                f"{addon.name} imports types its base does not: where both define a type, the "
                f"base's definition is used (the IM Dashboard keeps only the base's imports)",
            )
        result = PList(mine.pos if isinstance(mine, PList) else doc.pos)
        for entry, pos in [*self._addon_imports, *self._base_imports]:
            result.append(entry)
            result.item_positions.append(pos)
        merged["imports"] = result

    def _metadata(self, merged: PMap) -> None:
        """Base metadata kept; add-ons' tabs merged in; the chosen add-ons recorded (as the
        Dashboard does at submit) and the display name extended."""
        meta = self._fresh_map(merged, "metadata", merged.pos)
        tabs = self._fresh_map(meta, "tabs", meta.pos) if meta.get("tabs") is not None else None
        names = []
        for addon, doc in self.addon_docs:
            addon_meta = doc.get("metadata")
            if not isinstance(addon_meta, PMap):
                continue
            names.append(str(addon_meta.get("template_name") or addon.stem))
            their_tabs = addon_meta.get("tabs")
            if not isinstance(their_tabs, dict):
                continue
            if tabs is None:
                tabs = self._fresh_map(meta, "tabs", meta.pos)
            for title, selector in their_tabs.items():
                old = tabs.get(title)
                if isinstance(old, list) and isinstance(selector, list):
                    # same-titled tabs: keep both lists' entries (the Dashboard would keep only
                    # the add-on's, hiding the base's fields)
                    both = PList(old.pos if isinstance(old, PList) else meta.pos)
                    for item in [*old, *selector]:
                        if plain(item) not in [plain(x) for x in both]:
                            both.append(item)
                    tabs[title] = both
                else:
                    tabs[title] = selector
                tabs.key_positions[title] = addon_meta["tabs"].key_pos(title)
        base_name = str(meta.get("template_name") or self.base.stem)
        meta["template_name"] = " + ".join([base_name, *names])
        meta["childs"] = [
            os.path.relpath(a.resolve(), self.base.parent.resolve()) for a in self.addons
        ]

    def _check_tabs(self, merged: PMap) -> None:
        """Tab entries naming inputs that do not exist, and `enabled_by` naming unknown inputs,
        are warnings (the Dashboard silently drops such fields)."""
        tabs = _section(merged, "metadata", "tabs")
        inputs = _section(merged, "topology_template", "inputs")
        names = set(inputs) if isinstance(inputs, dict) else set()
        if not isinstance(tabs, dict):
            return
        for title, selector in tabs.items():
            if not isinstance(selector, list):
                continue  # a regex over input names
            for i, item in enumerate(selector):
                pos = selector.item_pos(i) if isinstance(selector, PList) else None
                name, options = (next(iter(item.items())) if isinstance(item, dict) and item
                                 else (item, None))  # fmt: skip
                if name not in names:
                    self.problems.warn(pos, f"tab '{title}' lists '{name}', which is not an input")
                enabled_by = options.get("enabled_by") if isinstance(options, dict) else None
                if enabled_by is not None and enabled_by not in names:
                    self.problems.warn(
                        pos, f"'{name}' is enabled_by '{enabled_by}', which is not an input"
                    )


def _build_marks(smap: SourceMap, text_tree: Any, source_tree: Any) -> None:
    """Pair every key/value/item position of the merged text with the original one."""
    pairs: list[tuple[tuple[int, int], Position]] = []

    def walk(text_node: Any, source_node: Any) -> None:
        if isinstance(text_node, PMap) and isinstance(source_node, PMap):
            pairs.append(((text_node.pos.line, text_node.pos.col), source_node.pos))
            for key in text_node:
                if key not in source_node:
                    continue
                kp = text_node.key_pos(key)
                pairs.append(((kp.line, kp.col), source_node.key_pos(key)))
                vp = text_node.value_pos(key)
                pairs.append(((vp.line, vp.col), source_node.value_pos(key)))
                walk(text_node[key], source_node[key])
        elif isinstance(text_node, PList) and isinstance(source_node, PList):
            for i, item in enumerate(text_node):
                if i < len(source_node):
                    ip = text_node.item_pos(i)
                    pairs.append(((ip.line, ip.col), source_node.item_pos(i)))
                    walk(item, source_node[i])

    walk(text_tree, source_tree)
    pairs.sort(key=lambda pair: pair[0])
    smap._marks = [mark for mark, _ in pairs]
    smap._targets = [target for _, target in pairs]
