"""RADL text or a parsed `Document` → `Template` (parse, merge, check, map)."""

from __future__ import annotations

from typing import Any

from orbis.lang.errors import Problems, TemplateError
from orbis.lang.limits import check_size
from orbis.lang.radl.ast import Configure, Document
from orbis.lang.radl.checks import Checked, check_document
from orbis.lang.radl.elastic import read_elastic
from orbis.lang.radl.functions import is_function, map_function
from orbis.lang.radl.inherit import resolve_inheritance
from orbis.lang.radl.mapping import (
    REFERENCE_TYPE,
    components,
    map_network,
    map_system,
    plain_section,
)
from orbis.lang.radl.overlay import read_vrouter
from orbis.lang.radl.parser import parse_document
from orbis.model.infrastructure import Compute, Template
from orbis.overlay.topology import read_overlay

VERSION = "radl"


def load_radl(text: str, file: str) -> Template:
    """Parse RADL text into the model; raises TemplateError listing every problem found."""
    check_size(text, file)
    problems = Problems()
    return build(parse_document(text, file, problems), problems)


def build(doc: Document, problems: Problems) -> Template:
    resolve_inheritance(doc, problems)  # EC3's ec3_inherit_from, before anything reads it
    checked = check_document(doc, problems)
    if problems.problems:  # mapping a broken document only adds noise
        raise TemplateError(problems.problems)
    template = to_model(checked, problems)
    problems.check()
    template.warnings = list(problems.warnings)
    return template


def _deploys(doc: Document, problems: Problems) -> tuple[dict[str, int], dict[str, str]]:
    counts: dict[str, int] = {}
    clouds: dict[str, str] = {}
    for d in doc.deploys:
        counts[d.system] = counts.get(d.system, 0) + int(d.count)
        if d.cloud is None:
            continue
        if clouds.setdefault(d.system, d.cloud) != d.cloud:
            problems.add(
                d.pos,
                f"system '{d.system}' is deployed on two clouds "
                f"('{clouds[d.system]}' and '{d.cloud}')",
                "Orbis keeps one cloud per system: define a second system",
            )
    return counts, clouds


def _function_count(doc: Document, system: str, counts: dict[str, int],
                    problems: Problems) -> int:  # fmt: skip
    """IM's OSCAR and Lambda connectors make one function whatever the deploy's count."""
    count = counts.get(system, 0)
    if count > 1:
        where = next((d.pos for d in doc.deploys if d.system == system), None)
        problems.warn(where, f"system '{system}' is a function: one is made, not {count} "
                      "(as IM's OSCAR and Lambda connectors do)")  # fmt: skip
    return min(count, 1)


def to_model(checked: Checked, problems: Problems) -> Template:
    doc = checked.doc
    template = Template(source_file=doc.file, version=VERSION)
    meta: dict[str, Any] = template.metadata
    for (kind, sid), merged in checked.sections.items():
        if kind == "description":
            values = plain_section(merged)
            if "name" in values:
                meta["infra_name"] = values.pop("name")
            meta["radl.description"] = {"id": sid, **values}
        elif kind == "ansible":
            meta.setdefault("radl.ansible", {})[sid] = plain_section(merged)
        elif kind == "network":
            template.networks[sid] = map_network(sid, merged)
    for section in doc.sections:
        if section.kind == "network" and section.id in template.networks:
            template.networks[section.id].position = section.pos
    counts, clouds = _deploys(doc, problems)
    for section in doc.sections:
        system = checked.sections.get(("system", section.id))
        if section.kind != "system" or system is None or section.features is None:
            continue
        if is_function(system):
            template.functions[section.id] = map_function(
                section.id, system, _function_count(doc, section.id, counts, problems),
                clouds.get(section.id), section.pos, problems)  # fmt: skip
            continue
        compute = map_system(section.id, system, template.networks)
        compute.count, compute.cloud_id = counts.get(section.id, 0), clouds.get(section.id)
        compute.position = section.pos
        template.computes[section.id] = compute
    for sid in checked.references.get("system", []):
        if sid in counts:  # adding machines of a system the infrastructure already has
            template.computes[sid] = Compute(
                sid, REFERENCE_TYPE, counts[sid], cloud_id=clouds.get(sid)
            )
    if checked.references:
        meta["radl.references"] = {k: list(v) for k, v in checked.references.items()}
    configures: dict[str, Configure] = {c.id: c for c in doc.configures}
    _contextualize(doc, template)
    used = (
        components(doc, template, configures, problems) if template.contextualize is None else set()
    )
    unused = {c.id: c.recipe for c in doc.configures if c.id not in used and not c.reference}
    if unused:
        meta["radl.configures"] = unused
    systems = {sid: m for (kind, sid), m in checked.sections.items()
               if kind == "system" and sid in template.computes}  # fmt: skip
    read_elastic(doc, systems, template, problems)
    read_vrouter(systems, template, problems)
    read_overlay(template, problems)
    return template


def _contextualize(doc: Document, template: Template) -> None:
    if not doc.contextualizes:
        return
    times = [c.max_time for c in doc.contextualizes if c.max_time is not None]
    template.ctxt_max_time = int(max(times)) if times else None
    options: dict[str, Any] = {}
    for ctx in doc.contextualizes:
        options.update(ctx.options)
    if options:
        template.metadata["radl.contextualize_options"] = options
    if not any(ctx.items for ctx in doc.contextualizes):
        template.contextualize = False  # `contextualize ()`: no contextualization at all
