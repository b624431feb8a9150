"""Templates as the CLI reads them from the user's own disk: plain, or composed with add-ons;
errors printed with file:line:col, or as `validate --json`'s report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer

from orbis.cli.console import err, fail
from orbis.lang import CLIENT, load_template
from orbis.lang.compose import link_of, load_composed
from orbis.lang.errors import Problem, TemplateError
from orbis.model.infrastructure import Template
from orbis.providers.aws_lambda.functions import ecr_region

# a composed template: (merged text, base file its relative playbook paths start from)
Composed = tuple[str, Path] | None

WITH_HELP = "Add-on template (metadata.parents names FILE) to compose with FILE; repeatable"


def load_any(path: Path, inputs: dict[str, str], addons: list[Path]) -> tuple[Template, Composed]:
    """The template, and for a composition (--with, or a Dashboard link card) the merged text
    and the base file the bundle resolves playbooks from. Raises TemplateError."""
    for file in (path, *addons):
        if not file.is_file():
            raise TemplateError([Problem(None, f"{file}: no such file")])
    if not addons and link_of(path) is None:
        return load_template(path, inputs=inputs, sources=CLIENT), None  # the user's machine
    template, text, smap = load_composed(path, addons, inputs)
    return template, (text, Path(smap.base))


def load_or_explain(
    path: Path, inputs: dict[str, str], addons: list[Path] | None = None
) -> tuple[Template, Composed]:
    try:
        return load_any(path, inputs, addons or [])
    except TemplateError as exc:
        if len(exc.problems) == 1 and "no such file" in exc.problems[0].message:
            fail(exc.problems[0].message)
        names = " + ".join(str(p) for p in (path, *(addons or [])))
        err.print(f"[bold red]{names} is not valid:[/]", highlight=False)
        err.print(str(exc), highlight=False, markup=False)
        raise typer.Exit(1) from None


_WARNING = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$", re.S)


def _problem_json(problem: Problem) -> dict[str, Any]:
    pos = problem.position
    return {
        "file": pos.file if pos else None,
        "line": pos.line if pos else None,
        "col": pos.col if pos else None,
        "message": problem.message,
        "hint": problem.hint,
    }


def _warning_json(text: str) -> dict[str, Any]:
    found = _WARNING.match(text)
    if not found:
        return {"file": None, "line": None, "col": None, "message": text}
    return {
        "file": found["file"],
        "line": int(found["line"]),
        "col": int(found["col"]),
        "message": found["message"],
    }


def validation_report(path: Path, inputs: dict[str, str], addons: list[Path]) -> dict[str, Any]:
    """`orbis validate --json`: a stable shape for tools and editors."""
    files = [str(p) for p in (path, *addons)]
    try:
        template, _ = load_any(path, inputs, addons)
    except TemplateError as exc:
        return {
            "valid": False,
            "problems": [_problem_json(p) for p in exc.problems],
            "warnings": [],
            "summary": {"files": files},
        }
    return {
        "valid": True,
        "problems": [],
        "warnings": [_warning_json(w) for w in template.warnings],
        "summary": {
            "files": files,
            "name": template.name,
            # IM's translation: one system per machine node, container app and standalone
            # function, deployed `count` times
            "systems": template.systems(),
            "computes": {c.name: c.count for c in template.computes.values()},
            "containers": {a.name: a.count for a in template.containers.values()},
            # functions are deployed units too (IM counts them with the VMs)
            "functions": {f.name: f.count for f in template.functions.values()},
            # where each function would go (engine/function_places.py decides at deploy time)
            "function_targets": {f.name: {
                "service": str(f.properties.get("name") or ""), "host": f.host,
                "cloud_id": f.cloud_id, "image": f.image,
                "backend": "lambda" if ecr_region(f.image) and not f.host else "oscar",
            } for f in template.functions.values()},
            "components": sorted(template.components),
            "inputs": {k: v for k, v in template.inputs.items() if _jsonable(v)},
            "outputs": sorted(template.outputs),
        },
    }


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
