"""The model → RADL text (`to_radl`). Every template, TOSCA or RADL, can be shown as RADL,
as IM's API does; parsing the text back gives the same `meaning()` for a RADL template."""

from __future__ import annotations

from typing import Any

from orbis.lang.radl.ast import Document, Feature, Section, SectionRef, Soft
from orbis.lang.radl.unmapping import to_document
from orbis.model.infrastructure import Template

_INDENT = "    "


def quote(text: str) -> str:
    """A RADL string: single quotes; IM's parser only unescapes \\' inside."""
    return "'" + text.replace("'", "\\'") + "'"


def number(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = repr(value)
    if "e" in text or "E" in text:  # RADL numbers have no exponent
        text = format(value, ".17f").rstrip("0")
    return text


def render_value(value: Any) -> str:
    if isinstance(value, bool):
        return quote("yes" if value else "no")
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, list):
        return "[" + ", ".join(quote(str(v)) for v in value) + "]"
    if isinstance(value, SectionRef):
        return f"{value.kind} {value.id}"
    return quote(str(value))


def render_feature(feature: Feature | Soft, indent: str) -> str:
    if isinstance(feature, Soft):
        inner = (" and\n" + indent + _INDENT).join(
            render_feature(f, indent + _INDENT) for f in feature.features
        )
        return f"soft {number(feature.weight)} (\n{indent}{_INDENT}{inner}\n{indent})"
    if feature.op == "contains":
        subs = " and ".join(render_feature(f, indent) for f in feature.value)
        return f"{feature.name} contains ({subs})"
    text = feature.text if feature.text is not None else render_value(feature.value)
    return f"{feature.name} {feature.op} {text}"


def render_section(section: Section) -> str:
    head = f"{section.kind} {section.id}"
    if section.features is None:
        return head
    if not section.features:
        return head + " ()"
    body = (" and\n" + _INDENT).join(render_feature(f, _INDENT) for f in section.features)
    return f"{head} (\n{_INDENT}{body}\n)"


def render(doc: Document) -> str:
    parts = [render_section(s) for s in doc.sections]
    for c in doc.configures:
        if c.reference:
            parts.append(f"configure {c.id}")
        elif c.recipe is None:
            parts.append(f"configure {c.id} ()")
        else:
            text = c.recipe if c.recipe.endswith("\n") else c.recipe + "\n"
            parts.append(f"configure {c.id} (\n@begin{text}@end\n)")
    for ctx in doc.contextualizes:
        lines = [f"{_INDENT}option {k} = {render_value(v)}" for k, v in ctx.options.items()]
        for item in ctx.items:
            tail = f" with {item.tool}" if item.tool else ""
            tail = tail or ("" if item.step is None else f" step {item.step}")
            lines.append(f"{_INDENT}system {item.system} configure {item.configure}{tail}")
        head = "contextualize" + ("" if ctx.max_time is None else f" {number(ctx.max_time)}")
        parts.append(f"{head} (\n" + "\n".join(lines) + "\n)" if lines else f"{head} ()")
    for d in doc.deploys:
        parts.append(f"deploy {d.system} {d.count}" + (f" {d.cloud}" if d.cloud else ""))
    return "\n\n".join(parts) + "\n" if parts else ""


def to_radl(template: Template) -> str:
    """RADL text for a template from any language."""
    return render(to_document(template))
