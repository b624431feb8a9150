"""A RADL document as written (text or JSON), before semantics: the hub between the two
surface forms and the model (text ↔ Document ↔ JSON; Document → Template → Document)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orbis.model.infrastructure import Position

SECTION_KINDS = ("description", "network", "system", "ansible")


@dataclass
class Feature:
    """`name op value`; op is = <= >= (< and > are stored as <= and >=) or 'contains'.

    value: int/float (already multiplied by the unit's factor), str, list[str], or for
    'contains' the list of sub-features of the entry."""

    name: str
    op: str
    value: Any
    pos: Position | None = None
    unit: str | None = None  # as written (512m → "m"); None without one
    text: str | None = None  # a number as written, e.g. "22.10" (versions keep their zeros)


@dataclass(frozen=True)
class SectionRef:
    """`system wn` written as a value: EC3's `ec3_inherit_from` (radl/inherit.py resolves it
    before the document is checked)."""

    kind: str
    id: str


@dataclass
class Soft:
    weight: int | float
    features: list[Feature]
    pos: Position | None = None


@dataclass
class Section:
    """description / network / system / ansible. `features is None` = a bare reference."""

    kind: str
    id: str
    features: list[Feature | Soft] | None
    pos: Position | None = None


@dataclass
class Configure:
    id: str
    recipe: str | None  # raw text after @begin, up to the line before @end
    reference: bool = False
    pos: Position | None = None
    recipe_pos: Position | None = None  # where the recipe text starts (right after @begin)


@dataclass
class CtxItem:
    system: str
    configure: str
    step: int | None = None
    tool: str | None = None  # `with ID`: Ansible / cloud_init
    pos: Position | None = None


@dataclass
class Contextualize:
    max_time: int | float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    items: list[CtxItem] = field(default_factory=list)
    pos: Position | None = None


@dataclass
class Deploy:
    system: str
    count: int | float
    cloud: str | None = None
    pos: Position | None = None


@dataclass
class Document:
    file: str
    sections: list[Section] = field(default_factory=list)
    configures: list[Configure] = field(default_factory=list)
    contextualizes: list[Contextualize] = field(default_factory=list)
    deploys: list[Deploy] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Section]:
        return [s for s in self.sections if s.kind == kind]
