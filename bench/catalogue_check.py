"""Validate a copy of the IM Dashboard catalogue, IM's test templates and examples, or any folder
of templates, the way a user of them would deploy them: every stand-alone template, and every
base + add-on pair. Prints, per row, accepted or refused and the node counts of IM's translation.

Run: .venv/bin/python bench/catalogue_check.py FOLDER [--json] [--only SUBSTRING] [-i NAME=VALUE]…

The folder is walked recursively, as the Dashboard walks its catalogue: `*.yml`/`*.yaml` (TOSCA),
`*.radl` (RADL text) and `*.json` (RADL JSON, a list of objects); dot-files and
`*.parameters.yml|yaml` are skipped. A template's id is its path relative to the folder (what
`parents`/`childs` name). A base is a TOSCA template without `metadata.parents`; its add-ons are
the ones it lists in `metadata.childs` plus any add-on naming it in `metadata.parents` (the
Dashboard offers the first; the second only when the URL names them): the pairs are the union of
both relations. A Dashboard link card (`metadata.link`) is composed from its parent and the
add-ons it names. Add-ons alone are not deployable (they refer to their base's nodes) and are
only checked through their pairs. YAML files that are neither TOSCA nor RADL (playbooks, task
lists) are skipped. Everything is read as `orbis validate` reads it (local files next to a
template are the user's own).

Per row: the template or pair, "accepted" (with the number of warnings) or "refused" and the
first problems (file:line:col), and what IM's translation would deploy: machine nodes with their
instance counts (Compute count or scalable default, Kubernetes container apps, standalone
functions) and FaaS functions, hosted ones included. The last line is "N accepted, M refused
of T". Exit status 0 when every row is accepted, 1 otherwise (a holdout set may hold templates
IM refuses too: read the rows).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orbis.lang import CLIENT, load_template
from orbis.lang.compose import addons_of, link_of, load_composed
from orbis.lang.errors import TemplateError
from orbis.model.infrastructure import Template

TEMPLATE_SUFFIXES = (".yml", ".yaml")
RADL_SUFFIXES = (".radl", ".json")
FIRST_PROBLEMS = 3  # problems printed per failing row


@dataclass
class Row:
    label: str
    valid: bool
    problems: list[str] = field(default_factory=list)
    nodes: dict[str, int] = field(default_factory=dict)
    functions: dict[str, int] = field(default_factory=dict)
    warnings: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "pair": self.label,
            "valid": self.valid,
            "problems": self.problems,
            "nodes": self.nodes,
            "functions": self.functions,
            "warnings": self.warnings,
        }


def _kind(path: Path) -> str:
    """ "tosca", "radl" or "other" (a playbook, a task list, JSON that is no RADL: not a
    template)."""
    if path.suffix == ".radl":
        return "radl"
    if path.suffix == ".json":
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return "other"
        return "radl" if text.lstrip().startswith("[") else "other"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return "tosca"  # broken: let the loader report where
    if isinstance(doc, dict) and ("tosca_definitions_version" in doc or "topology_template" in doc):
        return "tosca"
    return "other"


def _row(label: str, load: Any) -> Row:
    try:
        template: Template = load()
    except TemplateError as exc:
        return Row(label, False, [str(p) for p in exc.problems])
    return Row(
        label,
        True,
        nodes=template.systems(),
        functions={f.name: f.count for f in template.functions.values()},
        warnings=len(template.warnings),
    )


def _defined(inputs: dict[str, Any] | None, *paths: Path) -> dict[str, Any]:
    """The given inputs the files define (a value for an undefined input is refused)."""
    if not inputs:
        return {}
    names: set[str] = set()
    for path in paths:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        topology = doc.get("topology_template") if isinstance(doc, dict) else None
        section = topology.get("inputs") if isinstance(topology, dict) else None
        names |= set(section) if isinstance(section, dict) else set()
    return {k: v for k, v in inputs.items() if k in names}


def _compose(base: Path, addons: list[Path], inputs: dict[str, Any] | None = None) -> Template:
    link = link_of(base) if not addons else None
    files = [link[0], *link[1]] if link else [base, *addons]
    return load_composed(base, addons, _defined(inputs, *files))[0]


def _files(folder: Path) -> list[Path]:
    """Template files under `folder`, as the Dashboard walks its catalogue."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if path.suffix not in (*TEMPLATE_SUFFIXES, *RADL_SUFFIXES):
            continue
        if path.name.endswith((".parameters.yml", ".parameters.yaml")):
            continue
        found.append(path)
    return found


def check_folder(
    folder: Path, only: str = "", inputs: dict[str, Any] | None = None
) -> list[Row]:
    """The rows of `folder`; `inputs` are given to every template that defines them (what the
    Dashboard's form fills in), the others ignore them."""
    files = _files(folder)
    kinds = {p: _kind(p) for p in files}
    templates = [p for p in files if kinds[p] == "tosca"]
    relations = {p: addons_of(p) for p in templates}
    ids = {p: p.relative_to(folder).as_posix() for p in files}
    by_name = {ids[p]: p for p in templates}
    rows: list[Row] = []

    def wanted(label: str) -> bool:
        return only in label

    def alone(path: Path) -> Template:
        given = _defined(inputs, path) if kinds[path] == "tosca" else None
        return load_template(path, given, sources=CLIENT)

    for path in files:
        if kinds[path] == "radl" and wanted(ids[path]):
            rows.append(_row(ids[path], lambda p=path: alone(p)))
    for path in templates:
        parents, childs = relations[path]
        if parents:
            continue  # an add-on: checked with each base below
        if link_of(path) is not None:
            if wanted(ids[path]):
                rows.append(_row(ids[path], lambda p=path: _compose(p, [], inputs)))
            continue
        if wanted(ids[path]):
            rows.append(_row(ids[path], lambda p=path: alone(p)))
        addons = [by_name[c] for c in childs if c in by_name]
        missing = [c for c in childs if c not in by_name]
        for other in templates:  # add-ons naming this base that it does not list
            if other not in addons and ids[path] in relations[other][0]:
                addons.append(other)
        for child in missing:  # not in this copy: cannot be checked, said but not counted
            if wanted(f"{ids[path]} + {child}"):
                print(
                    f"skipped: {ids[path]} + {child} ({child} is not in {folder})", file=sys.stderr
                )
        for addon in addons:
            label = f"{ids[path]} + {ids[addon]}"
            if not wanted(label):
                continue
            if kinds.get(addon) != "tosca":
                print(f"skipped: {label} ({ids[addon]} is not a template)", file=sys.stderr)
                continue
            rows.append(_row(label, lambda b=path, a=addon: _compose(b, [a], inputs)))
    return rows


def _counts(values: dict[str, int]) -> str:
    return ", ".join(f"{name}x{count}" for name, count in values.items()) or "-"


def print_table(rows: list[Row]) -> None:
    width = max((len(r.label) for r in rows), default=10)
    for row in rows:
        status = (f"accepted ({row.warnings} warnings)" if row.warnings else "accepted"
                  ) if row.valid else "refused"  # fmt: skip
        print(f"{row.label:<{width}}  {status:<22}  nodes: {_counts(row.nodes)}", end="")
        print(f"  functions: {_counts(row.functions)}" if row.functions else "")
        for problem in row.problems[:FIRST_PROBLEMS]:
            print(f"    {problem.splitlines()[0]}")
        if len(row.problems) > FIRST_PROBLEMS:
            print(f"    ... {len(row.problems) - FIRST_PROBLEMS} more")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "folder", type=Path, help="a folder of templates (e.g. a copy of the catalogue)"
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--only", default="", help="check only rows whose label contains this")
    parser.add_argument(
        "-i", "--input", action="append", default=[], metavar="NAME=VALUE",
        help="a value for an input, as the Dashboard's form gives it (repeatable)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder}: not a folder")
    inputs = dict(item.partition("=")[::2] for item in args.input)
    rows = check_folder(args.folder, args.only, inputs)
    valid = sum(r.valid for r in rows)
    if args.json:
        print(json.dumps({"rows": [r.as_json() for r in rows], "valid": valid, "total": len(rows)}))
    else:
        print_table(rows)
        print(f"{valid} accepted, {len(rows) - valid} refused of {len(rows)}")
    return 0 if valid == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
