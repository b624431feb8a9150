"""`repositories` and `imports`: shipped type sets stand in for well-known URLs (offline);
other http(s) URLs come through the artifact mirrors/cache/guarded download; local files only
where the loader may read them (orbis.lang.sources: the CLI, never the server)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from orbis.lang.errors import Problems, TemplateError
from orbis.lang.sources import RULE, SERVER, Sources, outside_bundle, read_local
from orbis.lang.tosca.registry import TypeSet, shipped_for_url, type_set_from
from orbis.lang.yaml_positions import PMap, child_pos, duplicate_warnings, load_yaml
from orbis.model.infrastructure import Position

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
URL_HINT = (
    "the shipped type sets (custom_types.yaml of indigo-dc/tosca-types, grycap/tosca, "
    "grycap/ec3) resolve offline; other URLs need a mirror (ORBIS_ARTIFACT_MAP) or a public "
    "address (ORBIS_FETCH_ALLOW lists the exceptions)"
)
Base = Path | str  # the folder of a local file, or the URL of a downloaded one


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
    """Collects the shipped set keys and other type sets a template imports."""

    def __init__(
        self, problems: Problems, repositories: dict[str, str], sources: Sources = SERVER
    ) -> None:
        self.problems = problems
        self.repositories = repositories
        self.sources = sources
        self.shipped: list[str] = []
        self.local: list[TypeSet] = []
        self._seen: set[str] = set()

    def read(self, doc: PMap, base: Base) -> None:
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
            self._one(entry, pos, base)

    def _one(self, entry: Any, pos: Position | None, base: Base) -> None:
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
        elif isinstance(base, str):  # inside a downloaded file: relative to its URL
            url = urljoin(base, url)
        key = shipped_for_url(url)
        if key:
            if key not in self.shipped:
                self.shipped.append(key)
            return
        scheme = url.split(":", 1)[0].lower() if _URL.match(url) else ""
        if scheme in ("http", "https"):
            self._remote(url, pos)
        elif scheme == "file" and self.sources.local_files:
            self._local(Path(url.removeprefix("file://")), pos, base)
        elif scheme:
            why = "file URLs name files of the server" if scheme == "file" else "not http(s)"
            self.problems.add(pos, f"import '{url}' refused: {why}", RULE)
        elif self.sources.local_files and isinstance(base, Path):
            self._local(Path(url).expanduser(), pos, base)
        else:
            why = outside_bundle(url) or "no such file was sent with the template"
            self.problems.add(pos, f"import '{url}' refused: {why}", RULE)

    def _remote(self, url: str, pos: Position | None) -> None:
        if url in self._seen:
            return
        self._seen.add(url)
        from orbis.configure.artifacts import ArtifactError, fetch  # mirrors, cache, rules

        try:
            text = fetch(url)
        except ArtifactError as exc:
            cause = str(exc).removeprefix(f"artifact {url} could not be fetched: ")
            self.problems.add(pos, f"cannot import '{url}': {cause}", URL_HINT)
            return
        self._types(text, url, url, pos)

    def _local(self, path: Path, pos: Position | None, base: Base) -> None:
        folder = base if isinstance(base, Path) else Path.cwd()
        path = (folder / path).resolve()
        if str(path) in self._seen:
            return
        self._seen.add(str(path))
        try:
            text = read_local(path)
        except OSError as exc:
            self.problems.add(pos, f"cannot read import '{path}': {exc}", URL_HINT)
            return
        self._types(text, str(path), path.parent, pos)

    def _types(self, text: str, file: str, base: Base, pos: Position | None) -> None:
        try:
            doc = load_yaml(text, file)
        except TemplateError as err:
            for problem in err.problems:
                self.problems.add(problem.position, problem.message, problem.hint)
            return
        if not isinstance(doc, PMap):
            self.problems.add(pos, f"import '{file}' is not a TOSCA types mapping")
            return
        for repeated in duplicate_warnings(doc):
            self.problems.warn(repeated.position, repeated.message)
        self.read(doc, base)  # its own imports first: it may derive from them
        self.local.append(type_set_from(doc))
