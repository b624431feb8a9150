"""The checks of reference §1.3 on a parsed document: values of well-known features, ids,
references between sentences, recipes. Every problem has a position and, if possible, a hint."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from orbis.lang.errors import Problems, suggest
from orbis.lang.radl.ast import Configure, Document
from orbis.lang.radl.features import APPLICATION, kind_of, misspelling
from orbis.lang.radl.outports import parse_outports
from orbis.lang.radl.units import PERFORMANCE_UNITS, size_factor
from orbis.lang.radl.values import Merged, Value, merge
from orbis.model.infrastructure import Position

_VERSION = re.compile(r"\d+(\.\d+)*")
_SYMBOL = re.compile(r"[^A-Za-z0-9]")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
TOOLS = ("Ansible", "cloud_init")


@dataclass
class Checked:
    """The document with each section's features merged, ready for mapping."""

    doc: Document
    sections: dict[tuple[str, str], Merged] = field(default_factory=dict)
    references: dict[str, list[str]] = field(default_factory=dict)  # kind → ids

    _ids: dict[str, list[str]] = field(default_factory=dict)

    def ids(self, kind: str) -> list[str]:
        """Defined and referenced ids of a class (computed once all sections are read)."""
        if kind not in self._ids:
            defined = [i for k, i in self.sections if k == kind]
            self._ids[kind] = defined + self.references.get(kind, [])
        return self._ids[kind]


def _expect_kind(value: Value, want: str, problems: Problems, what: str) -> bool:
    if value.kind != want:
        problems.add(value.pos, f"{value.name} takes {what}")
        return False
    return True


def check_value(section: str, value: Value, problems: Problems, doc: Checked) -> None:
    kind = kind_of(section, value.name)
    if kind is None:
        meant = misspelling(section, value.name)
        if meant:
            problems.add(
                value.pos, f"unknown {section} feature '{value.name}'", f"did you mean '{meant}'?"
            )
        return
    text = (value.string or "") if value.kind == "str" else ""
    if kind in ("num", "size", "perf"):
        if not _expect_kind(value, "num", problems, "a number"):
            return
        unit = value.unit
        if unit and kind == "size" and size_factor(unit) is None:
            problems.add(
                value.pos,
                f"{value.name}: unknown size unit '{unit}'",
                "use K M G T (powers of 10) or Ki Mi Gi Ti (powers of 2), optional B",
            )
        elif unit and kind == "perf" and unit.upper() not in PERFORMANCE_UNITS:
            problems.add(value.pos, f"{value.name}: unknown unit '{unit}'", "ECU, GCEU or HRZ")
        elif unit and kind == "num":
            problems.add(value.pos, f"{value.name} takes a number without unit")
    elif kind in ("str", "yesno", "network", "ansible", "password", "outports"):
        if not _expect_kind(value, "str", problems, "a quoted string"):
            return
        if kind == "yesno" and text.lower() not in ("yes", "no"):
            problems.add(value.pos, f"{value.name} must be 'yes' or 'no', not '{text}'")
        elif kind == "password":
            _check_password(value, problems)
        elif kind == "outports":
            for where_problem in parse_outports(text)[1]:
                problems.add(
                    value.pos,
                    f"outports: {where_problem}",
                    "entries read [CIDR-]PORT[:END][/PROTO][-PORT[/PROTO]]",
                )
        elif kind == "network" and text not in doc.ids("network"):
            problems.add(value.pos, f"unknown network '{text}'", suggest(text, doc.ids("network")))
        elif kind == "ansible" and text not in doc.ids("ansible"):
            problems.add(
                value.pos, f"unknown ansible section '{text}'", suggest(text, doc.ids("ansible"))
            )
    elif kind.startswith("enum:"):
        allowed = kind[5:].split("|")
        if _expect_kind(value, "str", problems, "a quoted string") and text not in allowed:
            hint = "one of " + ", ".join(f"'{a}'" for a in allowed)
            problems.add(value.pos, f"{value.name}: '{text}' is not allowed", hint)
    elif kind == "version":
        written = (value.text or str(value.number())) if value.kind == "num" else value.string
        if written is None or not _VERSION.fullmatch(written):
            problems.add(
                value.pos, f"{value.name} must be digits separated by dots", "e.g. '22.04'"
            )
    elif kind == "url" and value.kind not in ("str", "list"):
        problems.add(value.pos, f"{value.name} takes a string or a list of strings")
    elif kind == "list" and value.kind != "list":
        problems.add(value.pos, f"{value.name} takes a list of strings ['…', '…']")
    elif kind == "contains" and _expect_kind(value, "contains", problems, "contains (…)"):
        subs = [sub for entry in value.entries.values() for sub in entry.values()]
        for sub in subs:
            if sub.name not in APPLICATION and (m := misspelling("app", sub.name)):
                problems.add(sub.pos, f"unknown feature '{sub.name}'", f"did you mean '{m}'?")


def _check_password(value: Value, problems: Problems) -> None:
    text = value.string or ""
    if not (
        len(text) > 6
        and any(c.isupper() for c in text)
        and any(c.isdigit() for c in text)
        and _SYMBOL.search(text)
    ):
        problems.add(
            value.pos,
            f"{value.name} is too weak",
            "more than 6 characters with an uppercase letter, a digit and a symbol",
        )


def _check_interfaces(values: dict[str, Value], pos: Position | None, problems: Problems) -> None:
    groups: dict[str, Value] = {}
    for name, value in values.items():
        m = re.match(r"net_interface\.(\d+)\.", name)
        if m:
            groups.setdefault(m.group(1), value)
    for index, first in groups.items():
        if f"net_interface.{index}.connection" not in values:
            problems.add(
                first.pos,
                f"net_interface.{index} has no connection",
                f"add net_interface.{index}.connection = '<network>'",
            )


def _check_ansible(sid: str, values: dict[str, Value], pos: Position | None, p: Problems) -> None:
    for need in ("host", "credentials.username"):
        if need not in values:
            p.add(pos, f"ansible '{sid}' needs {need}")
    if "credentials.password" not in values and "credentials.private_key" not in values:
        p.add(pos, f"ansible '{sid}' needs credentials.password or credentials.private_key")


def check_recipe(configure: Configure, problems: Problems) -> None:
    if configure.recipe is None or configure.recipe_pos is None:
        return
    try:
        yaml.load(configure.recipe, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        start = configure.recipe_pos
        line, col = start.line, start.col
        if mark is not None:
            line, col = start.line + mark.line, mark.column + 1 + (col - 1 if not mark.line else 0)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.add(
            Position(start.file, line, col),
            f"recipe of configure '{configure.id}' is not valid YAML: {reason}",
        )


def check_document(doc: Document, problems: Problems) -> Checked:
    checked = Checked(doc)
    for section in doc.sections:
        key = (section.kind, section.id)
        if section.kind == "description":
            if any(k == "description" for k, _ in checked.sections):
                problems.add(section.pos, "a second description", "a document has one")
        elif key in checked.sections or section.id in checked.references.get(section.kind, []):
            problems.add(section.pos, f"{section.kind} '{section.id}' is defined twice")
            continue
        if section.features is None:
            checked.references.setdefault(section.kind, []).append(section.id)
        else:
            checked.sections[key] = merge(section.features, problems)
    configures: dict[str, Configure] = {}
    for configure in doc.configures:
        if configure.id in configures:
            problems.add(configure.pos, f"configure '{configure.id}' is defined twice")
        configures[configure.id] = configure
        check_recipe(configure, problems)
    for section in doc.sections:
        merged = checked.sections.get((section.kind, section.id))
        if merged is None or section.features is None:
            continue
        for value in [*merged.values.values(), *(v for s in merged.softs for v in s[1].values())]:
            check_value(section.kind, value, problems, checked)
        if section.kind == "system":
            _check_interfaces(merged.values, section.pos, problems)
        if section.kind == "ansible":
            _check_ansible(section.id, merged.values, section.pos, problems)
    _check_sentences(doc, checked, list(configures), problems)
    return checked


def _check_sentences(doc: Document, checked: Checked, configures: list[str], p: Problems) -> None:
    systems = checked.ids("system")
    known_systems, known_configures = set(systems), set(configures)
    for deploy in doc.deploys:
        if deploy.system not in known_systems:
            p.add(
                deploy.pos,
                f"deploy names unknown system '{deploy.system}'",
                suggest(deploy.system, systems),
            )
    for ctx in doc.contextualizes:
        for item in ctx.items:
            if item.system not in known_systems:
                p.add(
                    item.pos,
                    f"contextualize names unknown system '{item.system}'",
                    suggest(item.system, systems),
                )
            if item.configure not in known_configures:
                p.add(
                    item.pos,
                    f"contextualize names unknown configure '{item.configure}'",
                    suggest(item.configure, configures),
                )
            if item.tool is not None and item.tool not in TOOLS:
                p.add(
                    item.pos,
                    f"unknown contextualization tool '{item.tool}'",
                    suggest(item.tool, TOOLS) or "Ansible or cloud_init",
                )
