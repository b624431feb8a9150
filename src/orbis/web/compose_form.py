"""A catalogue choice (base + add-ons) as a form, and the posted form as a template to plan or
deploy. Composition is `orbis.lang.compose` (the CLI's `--with`); input values become the
inputs' defaults and playbooks next to the templates are inlined, as `orbis deploy` does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orbis.cli.bundle import bundle
from orbis.cli.templates import load_any
from orbis.lang.compose import compose
from orbis.lang.errors import Problem, TemplateError
from orbis.lang.yaml_positions import plain
from orbis.model.infrastructure import Template
from orbis.web.catalogue import Catalogue, Entry
from orbis.web.forms import Tab, tabs_of

MAX_ADDONS = 32


class ChoiceError(Exception):
    """The chosen templates do not exist or do not go together (the message says why)."""


@dataclass
class Choice:
    """A base template and the add-ons chosen for it, in order."""

    base: Entry
    addons: list[Entry]

    @property
    def title(self) -> str:
        return " + ".join([self.base.display_name, *(a.template_name for a in self.addons)])

    @property
    def childs_param(self) -> str:
        return ",".join(a.id for a in self.addons)

    @property
    def paths(self) -> tuple[Path, list[Path]]:
        return self.base.path, [a.path for a in self.addons]


def choose(catalogue: Catalogue, template_id: str, childs: str | None,
           vos: list[str] | None = None) -> Choice:  # fmt: skip
    """The base named by `template_id` (a link card stands for its parent and add-ons) and the
    add-ons named in `childs` (comma-separated ids). ChoiceError when one is unknown, or not
    offered to a user of `vos` (`metadata.vos`)."""
    entry = catalogue.get(template_id)
    if entry is None or not entry.offered_to(vos or []):
        raise ChoiceError(f"No template {template_id!r} in the catalogue")
    names = [c for c in (childs or "").split(",") if c.strip()]
    if entry.link_parent:
        base = catalogue.get(entry.link_parent)
        if base is None:
            raise ChoiceError(f"{entry.id} links to {entry.link_parent}, which is not in the "
                              "catalogue")  # fmt: skip
        names = [*entry.link_childs, *names]
        entry = base
    if len(names) > MAX_ADDONS:
        raise ChoiceError(f"At most {MAX_ADDONS} add-ons can be chosen")
    addons: list[Entry] = []
    for name in names:
        addon = catalogue.get(name.strip())
        if addon is None or not addon.offered_to(vos or []):
            raise ChoiceError(f"No add-on {name!r} in the catalogue")
        if addon.id in [a.id for a in addons]:
            raise ChoiceError(f"The add-on {addon.id} is chosen twice")
        addons.append(addon)
    if not entry.is_card:
        raise ChoiceError(f"{entry.id} is an add-on: choose one of its bases "
                          f"({', '.join(entry.parents)})")  # fmt: skip
    return Choice(entry, in_catalogue_order(entry, addons))


def in_catalogue_order(base: Entry, addons: list[Entry]) -> list[Entry]:
    """The add-ons in the order of the base's `childs` (its author's order, so the same choice
    always composes the same way, whatever order they were clicked in: a later add-on replaces
    a same-named input or node of an earlier one); any not listed there follow, as given."""
    listed = {child: index for index, child in enumerate(base.childs)}
    return sorted(addons, key=lambda a: listed.get(a.id, len(listed)))


def form_tabs(choice: Choice) -> list[Tab]:
    """The composed template's form (TemplateError when the templates do not compose)."""
    base, addons = choice.paths
    if not addons:
        doc = yaml.safe_load(base.read_text(encoding="utf-8"))
        return tabs_of(doc if isinstance(doc, dict) else {})
    _, smap = compose(base, addons)
    document = plain(smap.document)
    return tabs_of(document if isinstance(document, dict) else {})


def build(choice: Choice, values: dict[str, Any], infra_name: str = ""
          ) -> tuple[Template, str, str]:  # fmt: skip
    """(model, template text to send, file name) of the choice with these input values (and
    the name the user gave the infrastructure, as `metadata.infra_name`, the Dashboard's way).
    TemplateError with file:line:col when the result is not valid."""
    base, addons = choice.paths
    template, composed = load_any(base, values, addons)
    if composed is None:
        text = bundle(base, template, values)
    else:
        text = bundle(composed[1], template, values, text=composed[0])
    if infra_name:
        doc = yaml.safe_load(text)
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        doc["metadata"] = {**meta, "infra_name": infra_name}
        template.metadata["infra_name"] = infra_name
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    return template, text, base.name


MAX_NAME = 128


def infra_name_of(form: Any) -> tuple[str, str]:
    """(the name the user gave, an error or "")."""
    name = str(form.get("infra_name") or "").strip()
    if len(name) > MAX_NAME:
        return name, f"at most {MAX_NAME} characters"
    if any(ord(c) < 32 for c in name):
        return name, "one line of text"
    return name, ""


def problems_of(error: TemplateError) -> list[dict[str, Any]]:
    """Problems with their position made relative to the catalogue (no server paths shown)."""
    out = []
    for problem in error.problems:
        out.append({"where": _where(problem), "message": problem.message, "hint": problem.hint})
    return out


def _where(problem: Problem) -> str:
    pos = problem.position
    if pos is None:
        return ""
    return f"{Path(pos.file).name}:{pos.line}:{pos.col}"
