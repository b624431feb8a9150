"""Template languages: TOSCA (IM dialect) and RADL (text and JSON). `load_template` picks by
content: a YAML mapping with TOSCA keys is TOSCA, a JSON list is RADL JSON, the rest is RADL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orbis.lang.errors import Problem, TemplateError
from orbis.lang.limits import check_size
from orbis.lang.sources import CLIENT, SERVER, Sources
from orbis.lang.yaml_positions import PMap, load_yaml
from orbis.model.infrastructure import Position, Template

__all__ = [
    "CLIENT", "SERVER", "Problem", "Sources", "TemplateError", "language_of", "load_template",
]  # fmt: skip

_TOSCA_KEYS = ("tosca_definitions_version", "topology_template")


def language_of(text: str) -> str:
    """ "tosca", "radl-json" or "radl": the language `load_template` reads `text` as (a TOSCA
    update may hold only topology_template). Broken text is judged by its look alone."""
    if text.lstrip().startswith("["):
        return "radl-json"
    if any(key in text for key in _TOSCA_KEYS):
        try:
            doc = load_yaml(text, "-")
        except TemplateError:
            return "tosca" if "tosca_definitions_version" in text else "radl"
        if isinstance(doc, PMap) and any(k in doc for k in _TOSCA_KEYS):
            return "tosca"
    return "radl"


def load_template(
    path: str | Path,
    inputs: dict[str, Any] | None = None,
    text: str | None = None,
    sources: Sources = SERVER,
) -> Template:
    """Load a template of any supported language; raises TemplateError with positions.
    Files of this machine are read only with `sources=CLIENT` (the CLI: orbis.lang.sources)."""
    from orbis.lang.radl.json_form import from_json
    from orbis.lang.radl.loader import load_radl
    from orbis.lang.tosca.loader import load_document, read_text

    file = str(path)
    source = read_text(path, text)
    check_size(source, file)  # before any parsing: one bound for every language
    if source.lstrip().startswith("["):  # a RADL JSON list (RADL text never starts with '[')
        return from_json(source, file)
    if any(key in source for key in _TOSCA_KEYS):  # cheap test first: RADL rarely says these
        try:
            doc = load_yaml(source, file)
        except TemplateError:
            if "tosca_definitions_version" in source:
                raise  # broken TOSCA: report the YAML error
            doc = None
        if isinstance(doc, PMap) and any(k in doc for k in _TOSCA_KEYS):
            return load_document(doc, file, inputs or {}, sources)
    try:
        return load_radl(source, file)
    except TemplateError as exc:
        if ":" in source and _is_yaml_mapping(source, file):  # YAML, but neither language
            message = "neither TOSCA (no tosca_definitions_version) nor RADL"
            hint = f"as RADL: {exc.problems[0]}"
            raise TemplateError([Problem(Position(file, 1, 1), message, hint)]) from None
        raise


def _is_yaml_mapping(source: str, file: str) -> bool:
    try:
        return isinstance(load_yaml(source, file), PMap)
    except TemplateError:
        return False
