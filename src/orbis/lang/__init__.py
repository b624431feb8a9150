"""Template languages: TOSCA (IM dialect) now, RADL later. `load_template` picks by content."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orbis.lang.errors import Problem, TemplateError
from orbis.lang.yaml_positions import PMap, load_yaml
from orbis.model.infrastructure import Position, Template

__all__ = ["Problem", "TemplateError", "load_template"]


def load_template(
    path: str | Path, inputs: dict[str, Any] | None = None, text: str | None = None
) -> Template:
    """Load a template of any supported language; raises TemplateError with positions."""
    from orbis.lang.tosca.loader import load_document, read_text

    file = str(path)
    source = read_text(path, text)
    try:
        doc = load_yaml(source, file)
    except TemplateError:
        if "tosca_definitions_version" in source:
            raise  # broken TOSCA: report the YAML error
        doc = None
    tosca_keys = ("tosca_definitions_version", "topology_template")
    if isinstance(doc, PMap) and any(k in doc for k in tosca_keys):
        return load_document(doc, file, inputs or {})
    message = (
        "not a TOSCA template (no tosca_definitions_version): "
        "RADL support arrives with the RADL parser"
    )
    raise TemplateError([Problem(Position(file, 1, 1), message)])
