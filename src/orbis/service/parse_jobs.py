"""What the parse workers run (parse_pool.py): module-level functions of plain arguments that
return the parsed model, or raise InvalidRequest with the problems as the user sees them."""

from __future__ import annotations

from pathlib import Path

import yaml

from orbis.lang import language_of, load_template
from orbis.lang.errors import TemplateError
from orbis.lang.merge import merge_tosca
from orbis.model.infrastructure import Template
from orbis.service.errors import InvalidRequest


def parse(text: str, file_name: str) -> tuple[Template, str]:
    """The template and its language ("tosca", "radl" or "radl-json")."""
    try:
        return load_template(Path(file_name).name, text=text), language_of(text)
    except TemplateError as exc:
        raise InvalidRequest(str(exc)) from exc


def parse_update(text: str, file_name: str, stored_tosca: str | None, radl_name: str = ""
                 ) -> tuple[str, str | None, Template | None]:  # fmt: skip
    """An update of an infrastructure: (its language, the stored TOSCA with the update merged
    in, the template). A RADL update is read as `radl_name` (default: `file_name`). A TOSCA
    update of an infrastructure without a stored TOSCA gives (language, None, None): the
    caller says why it refuses."""
    language = language_of(text)
    if language != "tosca":
        return language, None, parse(text, radl_name or file_name)[0]
    if stored_tosca is None:
        return language, None, None
    try:
        merged = merge_tosca(stored_tosca, text)
    except TemplateError as exc:  # a limit (LimitError) in the update
        raise InvalidRequest(str(exc)) from exc
    except (yaml.YAMLError, AttributeError, TypeError) as exc:  # not a YAML mapping
        raise InvalidRequest(f"Error reading the update: cannot merge it: {exc}") from None
    return language, merged, parse(merged, file_name)[0]

