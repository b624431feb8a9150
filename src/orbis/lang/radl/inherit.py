"""EC3's `ec3_inherit_from = system wn` (or `network net`): the section becomes a copy of the
one it names, with its own features written over it, as EC3 does before it sends the RADL to
IM (docs/elastic.md, "A node type like another"):
- a feature of the section replaces every feature of the same name of the parent (EC3 writes
  `ec3_if_fail = ''` over the parent's chain; `disk.0.image.url` over its image); the parent's
  other features and soft groups are copied, the parent's first;
- a system's `configure` of the same name becomes the parent's recipe followed by its own
  (the parent's alone when it has none);
- deploy lines are not inherited: a node type with `ec3_max_instances` starts with no worker;
  nor are Orbis's cluster knobs (`ec3_idle_time`...): they belong to the front-end alone, so
  a worker type may inherit from the front-end system.

Resolved on the parsed document before it is checked, so the rest of Orbis sees plain RADL.
A parent that is unknown, of another kind, a bare reference, or a cycle is an error at the
`ec3_inherit_from` feature's file:line:col."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import yaml

from orbis.lang.errors import Problems, suggest
from orbis.lang.radl.ast import Configure, Document, Feature, Section, SectionRef, Soft
from orbis.lang.radl.elastic import KNOB_FEATURES
from orbis.lang.radl.parser import INHERIT

KINDS = ("system", "network")


def resolve_inheritance(doc: Document, problems: Problems) -> None:
    """Rewrite, in place, every system or network with `ec3_inherit_from`."""
    if not any(_inherit(s) for s in doc.sections):
        return
    by_key: dict[tuple[str, str], Section] = {}
    for section in doc.sections:
        by_key.setdefault((section.kind, section.id), section)
    configures = {c.id: c for c in doc.configures}
    done: dict[tuple[str, str], list[Feature | Soft]] = {}

    def features(section: Section, path: tuple[str, ...]) -> list[Feature | Soft]:
        key = (section.kind, section.id)
        if key in done:
            return done[key]
        own = list(section.features or [])
        found = _inherit(section)
        if found is None:
            return own
        value = found.value
        rest = [f for f in own if f is not found]
        parent = None
        if not isinstance(value, SectionRef):
            problems.add(found.pos, f"{INHERIT} of {section.kind} '{section.id}' must name a "
                         f"{section.kind}, as '{INHERIT} = {section.kind} wn'")  # fmt: skip
        elif value.kind != section.kind:
            problems.add(found.pos, f"{section.kind} '{section.id}' cannot inherit from "
                         f"{value.kind} '{value.id}': only from a {section.kind}")  # fmt: skip
        elif value.id in (*path, section.id):
            problems.add(found.pos, f"{INHERIT} makes a cycle: "
                         f"{' -> '.join([*path, section.id, value.id])}")  # fmt: skip
        else:
            parent = by_key.get((value.kind, value.id))
            known = [s.id for s in doc.sections
                     if s.kind == value.kind and s.features is not None]  # fmt: skip
            if parent is None:
                problems.add(found.pos, f"{INHERIT} of {section.kind} '{section.id}' names "
                             f"unknown {value.kind} '{value.id}'",
                             suggest(value.id, known))  # fmt: skip
            elif parent.features is None:
                problems.add(found.pos, f"{value.kind} '{value.id}' is a bare reference (an "
                             f"existing {value.kind} of the infrastructure): it has no features "
                             "to inherit")  # fmt: skip
                parent = None
        if parent is None:
            done[key] = rest
            return rest
        inherited = features(parent, (*path, section.id))
        names = {f.name for f in rest if isinstance(f, Feature)}
        merged = [f for f in inherited if isinstance(f, Soft) or (
            f.name not in names and f.name != INHERIT and f.name not in KNOB_FEATURES)] + rest
        done[key] = merged
        if section.kind == "system":
            _configure(doc, configures, parent.id, section.id)
        return merged

    for i, section in enumerate(doc.sections):
        if section.kind in KINDS and section.features is not None and _inherit(section):
            doc.sections[i] = replace(section, features=features(section, ()))


def _inherit(section: Section) -> Feature | None:
    return next((f for f in section.features or [] if isinstance(f, Feature)
                 and f.name == INHERIT), None)  # fmt: skip


def _configure(doc: Document, configures: dict[str, Configure], parent: str, child: str) -> None:
    """configure CHILD := the parent's recipe, then the child's (EC3's order)."""
    base = configures.get(parent)
    if base is None or base.recipe is None:
        return
    own = configures.get(child)
    if own is None:
        copy = Configure(child, base.recipe, pos=base.pos, recipe_pos=base.recipe_pos)
        doc.configures.append(copy)
        configures[child] = copy
        return
    if own.recipe is None:
        return
    joined = _join(base.recipe, own.recipe)
    if joined is not None:
        own.recipe = joined


def _join(first: str, second: str) -> str | None:
    """Two playbooks (YAML lists of plays) as one, text kept; None when either is no list
    (the checks then report the original recipe)."""
    try:
        plays = [yaml.safe_load(first), yaml.safe_load(second)]
    except yaml.YAMLError:
        return None
    if not all(isinstance(p, list) for p in plays):
        return None
    parts = []
    for text in (first, second):
        lines = [line for line in text.strip("\n").splitlines() if line.strip() != "---"]
        parts.append(textwrap.dedent("\n".join(lines)))
    joined = "\n" + "\n".join(parts) + "\n"  # IM's recipe starts with the @begin line's end
    try:
        if yaml.safe_load(joined) == plays[0] + plays[1]:
            return joined
    except yaml.YAMLError:
        pass
    return "\n" + yaml.safe_dump(plays[0] + plays[1], sort_keys=False)
