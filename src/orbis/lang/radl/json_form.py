"""RADL's JSON form (reference §2): a list of objects with a `class` key, both ways.

Reading goes through the same `Document` → checks → model path as the text form, so the
checks and the model are the same. Problems name the object (`object 3 ('system front')`)
and point at the line:col where that object starts.
"""

from __future__ import annotations

import json
from typing import Any

from orbis.config import limits
from orbis.lang.errors import Problem, Problems, TemplateError
from orbis.lang.limits import LimitError, check_plain, check_size
from orbis.lang.radl.ast import (
    SECTION_KINDS,
    Configure,
    Contextualize,
    CtxItem,
    Deploy,
    Document,
    Feature,
    Section,
    Soft,
)
from orbis.lang.radl.encoding import SOFTS, decode
from orbis.lang.radl.loader import build
from orbis.lang.radl.unmapping import to_document
from orbis.model.infrastructure import Position, Template

CLASSES = (*SECTION_KINDS, "configure", "contextualize", "deploy")


def _starts(text: str) -> list[tuple[int, int]]:
    """(line, col) where each element of the top-level array starts (strings skipped)."""
    out: list[tuple[int, int]] = []
    depth, line, col, in_str, escape = 0, 1, 0, False, False
    for c in text:
        col += 1
        if c == "\n":
            line, col = line + 1, 0
        if in_str:
            if escape:
                escape = False
            elif c == "\\":
                escape = True
            elif c == '"':
                in_str = False
            continue
        if c == '"':
            in_str = True
        if c in "[{":
            depth += 1
            if depth == 2:
                out.append((line, col))
        elif c in "]}":
            depth -= 1
    return out


def _label(index: int, obj: Any) -> str:
    if not isinstance(obj, dict):
        return f"object {index}"
    name = obj.get("id") or obj.get("system") or ""
    return f"object {index} ('{obj.get('class', '?')} {name}'".rstrip() + ")"


class _Reader:
    def __init__(self, file: str, problems: Problems) -> None:
        self.file, self.problems, self.doc = file, problems, Document(file)

    def object(self, obj: Any, pos: Position) -> None:
        kind = obj.get("class") if isinstance(obj, dict) else None
        if kind not in CLASSES:
            self.problems.add(pos, f"'class' must be one of {', '.join(CLASSES)}")
            return
        if kind in SECTION_KINDS:
            self.section(kind, obj, pos)
        elif kind == "configure":
            reference = bool(obj.get("reference"))
            recipe = obj.get("recipes")
            self.doc.configures.append(
                Configure(
                    self.id(obj, pos),
                    recipe if isinstance(recipe, str) else None,
                    reference and recipe is None,
                    pos,
                    pos,
                )
            )
        elif kind == "deploy":
            count = obj.get("vm_number", 1)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                self.problems.add(pos, "key 'vm_number' must be a whole number >= 0")
                count = 0
            cloud = obj.get("cloud")
            system = str(obj.get("system") or "")
            if not system:
                self.problems.add(pos, "a deploy needs 'system'")
            self.doc.deploys.append(Deploy(system, count, str(cloud) if cloud else None, pos))
        else:
            self.contextualize(obj, pos)

    def id(self, obj: dict[str, Any], pos: Position) -> str:
        if not isinstance(obj.get("id"), str) or not obj["id"]:
            self.problems.add(pos, "key 'id' is missing")
            return ""
        return str(obj["id"])

    def section(self, kind: str, obj: dict[str, Any], pos: Position) -> None:
        sid = self.id(obj, pos)
        if obj.get("reference") is True and set(obj) <= {"class", "id", "reference"}:
            self.doc.sections.append(Section(kind, sid, None, pos))
            return
        plain = {k: v for k, v in obj.items() if k not in ("class", "id", "reference")}
        if SOFTS in plain and not isinstance(plain[SOFTS], list):
            self.problems.add(pos, "key 'softs' must be a list of {weight, items}")
            plain.pop(SOFTS)
        features: list[Feature | Soft] = decode(plain, pos)
        self.doc.sections.append(Section(kind, sid, features, pos))

    def contextualize(self, obj: dict[str, Any], pos: Position) -> None:
        max_time = obj.get("max_time")
        if max_time is not None and (not isinstance(max_time, int) or max_time < 0):
            self.problems.add(pos, "key 'max_time' must be a whole number >= 0")
            max_time = None
        options = obj.get("options") or {}
        ctx = Contextualize(max_time, dict(options) if isinstance(options, dict) else {}, pos=pos)
        items = obj.get("items")
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or not {"system", "configure"} <= set(item):
                self.problems.add(pos, "each item needs 'system' and 'configure'")
                continue
            step = item.get("step")
            tool = item.get("ctxt_tool")
            ctx.items.append(
                CtxItem(
                    str(item["system"]),
                    str(item["configure"]),
                    step if isinstance(step, int) else None,
                    str(tool) if tool and tool != "Ansible" else None,
                    pos,
                )
            )
        self.doc.contextualizes.append(ctx)


def read_document(text: str, file: str, problems: Problems) -> tuple[Document, dict[Position, str]]:
    check_size(text, file)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = Position(file, exc.lineno, exc.colno)
        raise TemplateError([Problem(where, f"not valid JSON: {exc.msg}")]) from None
    except RecursionError:  # nested past the decoder's own bound, far past ours
        limit = limits().max_yaml_depth
        raise LimitError(file, f"the document nests deeper than {limit} levels "
                               "(ORBIS_MAX_YAML_DEPTH)") from None  # fmt: skip
    check_plain(data, file)
    if not isinstance(data, list):
        raise TemplateError([Problem(Position(file, 1, 1), "RADL JSON is a list of objects")])
    starts = _starts(text)
    reader = _Reader(file, problems)
    labels: dict[Position, str] = {}
    for i, obj in enumerate(data):
        line, col = starts[i] if i < len(starts) else (1, 1)
        pos = Position(file, line, col)
        labels[pos] = _label(i, obj)
        reader.object(obj, pos)
    return reader.doc, labels


def from_json(text: str, file: str) -> Template:
    """RADL JSON text → the model; raises TemplateError (problems name object and key)."""
    problems = Problems()
    try:
        doc, labels = read_document(text, file, problems)
        if problems.problems:
            raise TemplateError(problems.problems)
        return build(doc, problems)
    except TemplateError as exc:
        labelled = locals().get("labels") or {}
        raise TemplateError([_name(p, labelled) for p in exc.problems]) from None


def _name(problem: Problem, labels: dict[Position, str]) -> Problem:
    label = labels.get(problem.position) if problem.position else None
    return (
        Problem(problem.position, f"{label}: {problem.message}", problem.hint) if label else problem
    )


def _features(features: list[Feature | Soft]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in features:
        if isinstance(f, Soft):
            out.setdefault(SOFTS, []).append(
                {"weight": f.weight, "items": _features(list(f.features))}
            )
        elif f.op == "contains":
            out.setdefault(f.name, []).append(_features(list(f.value)))
        elif f.op == "=":
            out[f.name] = f.value
        else:
            out[f"{f.name}{'_min' if f.op == '>=' else '_max'}"] = f.value
    return out


def document_json(doc: Document) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in doc.sections:
        extra = {"reference": True} if s.features is None else _features(s.features)
        out.append({"class": s.kind, "id": s.id, **extra})
    for c in doc.configures:
        out.append(
            {
                "class": "configure",
                "id": c.id,
                **({"reference": True} if c.reference else {"recipes": c.recipe or ""}),
            }
        )
    for ctx in doc.contextualizes:
        obj: dict[str, Any] = {"class": "contextualize"}
        if ctx.max_time is not None:
            obj["max_time"] = ctx.max_time
        if ctx.options:
            obj["options"] = dict(ctx.options)
        if ctx.items:
            obj["items"] = [
                {
                    "system": i.system,
                    "configure": i.configure,
                    **({"step": i.step} if i.step is not None else {}),
                    **({"ctxt_tool": i.tool} if i.tool else {}),
                }
                for i in ctx.items
            ]
        out.append(obj)
    for d in doc.deploys:
        out.append(
            {
                "class": "deploy",
                "system": d.system,
                "vm_number": d.count,
                **({"cloud": d.cloud} if d.cloud else {}),
            }
        )
    return out


def to_json(template: Template) -> list[dict[str, Any]]:
    """The model as RADL JSON objects (json.dumps-able)."""
    return document_json(to_document(template))
