"""`repositories` and `imports`: shipped type sets stand in for well-known URLs (never fetched)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from orbis.lang.errors import Problems, TemplateError
from orbis.lang.tosca.registry import TypeSet, shipped_for_url, type_set_from
from orbis.lang.yaml_positions import PMap, child_pos, load_yaml
from orbis.model.infrastructure import Position

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
OFFLINE_HINT = (
    "only the shipped type sets resolve offline: custom_types.yaml of indigo-dc/tosca-types, "
    "grycap/tosca and grycap/ec3, or a local file relative to the template"
)


def read_repositories(doc: PMap, problems: Problems) -> dict[str, str]:
    """name → base URL (trailing '/' stripped); `name: url` or `name: {url: ...}`."""
    section = doc.get("repositories")
    if section is None:
        return {}
    if not isinstance(section, dict):
        problems.add(doc.value_pos("repositories"), "'repositories' must be a mapping")
        return {}
    out: dict[str, str] = {}
    for name, spec in section.items():
        url = spec.get("url") if isinstance(spec, dict) else spec
        if not isinstance(url, str):
            problems.add(child_pos(section, name), f"repository '{name}' has no url")
            continue
        out[str(name)] = url.rstrip("/")
    return out


class ImportReader:
    """Collects the shipped set keys and local type sets a template imports."""

    def __init__(self, problems: Problems, repositories: dict[str, str]) -> None:
        self.problems = problems
        self.repositories = repositories
        self.shipped: list[str] = []
        self.local: list[TypeSet] = []
        self._seen: set[Path] = set()

    def read(self, doc: PMap, base_dir: Path) -> None:
        section = doc.get("imports")
        if section is None:
            return
        if not isinstance(section, list):
            self.problems.add(doc.value_pos("imports"), "'imports' must be a list")
            return
        for i, entry in enumerate(section):
            pos = child_pos(section, i)
            if isinstance(entry, dict) and len(entry) == 1 and "file" not in entry:
                name, entry = next(iter(entry.items()))
                if name == "template_file":
                    self.problems.add(pos, "IM 'template_file' imports are not supported yet")
                    continue
            self._one(entry, pos, base_dir)

    def _one(self, entry: Any, pos: Position | None, base_dir: Path) -> None:
        repo = None
        if isinstance(entry, dict):
            repo, entry = entry.get("repository"), entry.get("file")
        if not isinstance(entry, str):
            self.problems.add(pos, "an import must be a URL, a file or {file, repository}")
            return
        url = entry
        if repo is not None:
            if repo not in self.repositories:
                self.problems.add(pos, f"import names unknown repository '{repo}'")
                return
            url = f"{self.repositories[repo]}/{entry.lstrip('/')}"
        key = shipped_for_url(url)
        if key:
            if key not in self.shipped:
                self.shipped.append(key)
            return
        if _URL.match(url) and not url.startswith("file://"):
            self.problems.add(pos, f"cannot import '{url}' offline", OFFLINE_HINT)
            return
        self._local(Path(url.removeprefix("file://")), pos, base_dir)

    def _local(self, path: Path, pos: Position | None, base_dir: Path) -> None:
        path = (base_dir / path).resolve()
        if path in self._seen:
            return
        self._seen.add(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            self.problems.add(pos, f"cannot read import '{path}': {exc.strerror}", OFFLINE_HINT)
            return
        try:
            doc = load_yaml(text, str(path))
        except TemplateError as err:
            for problem in err.problems:
                self.problems.add(problem.position, problem.message, problem.hint)
            return
        if not isinstance(doc, PMap):
            self.problems.add(pos, f"import '{path}' is not a TOSCA types mapping")
            return
        self.read(doc, path.parent)  # its own imports first: it may derive from them
        self.local.append(type_set_from(doc))
