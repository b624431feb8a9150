"""Deploy-time artifacts (playbooks by URL): local mirrors, an on-disk cache, then HTTP.

Templates from IM's catalogues point their Ansible recipes at raw GitHub files. Parsing never
fetches them; the deployer calls `fetch(url)` when a step is about to run:

1. a configured URL prefix mapped to a local folder wins (machines without internet);
2. else a cached copy younger than the TTL ($ORBIS_HOME/cache/artifacts, keyed by URL);
3. else a download through `orbis.net.fetch` (address rules, redirects checked hop by hop,
   size and time caps), stored in the cache;
4. if that fails for a network reason, a stale cached copy still serves (offline after a first
   run); a refusal by a rule never does. Otherwise an ArtifactError naming the URL and the
   cause or rule.

Mapping: ORBIS_ARTIFACT_MAP="<prefix>=<folder>,<prefix>=<folder>" and/or the YAML file
$ORBIS_HOME/artifact-map.yaml (`<prefix>: <folder>`); the longest matching prefix wins.
ORBIS_ARTIFACT_TTL (seconds, default 3600 like IM) and ORBIS_ARTIFACT_TIMEOUT (default 10).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from orbis.configure.ansible import PlaybookError
from orbis.model.infrastructure import Function
from orbis.net.fetch import FetchError, FetchPolicy, FetchRefused
from orbis.net.fetch import fetch as download

DEFAULT_TTL = 3600.0
DEFAULT_TIMEOUT = 10.0


class ArtifactError(PlaybookError):
    """An artifact could not be read: the message names the URL and the cause."""


def _home() -> Path:
    return Path(os.environ.get("ORBIS_HOME") or Path.home() / ".local/share/orbis").resolve()


@dataclass
class ArtifactSettings:
    cache_dir: Path
    ttl: float = DEFAULT_TTL
    timeout: float = DEFAULT_TIMEOUT
    mapping: list[tuple[str, Path]] = field(default_factory=list)  # longest prefix first
    policy: FetchPolicy = field(default_factory=FetchPolicy)  # `timeout` is its read timeout

    @classmethod
    def from_env(cls) -> ArtifactSettings:
        home = _home()
        pairs: dict[str, str] = {}
        map_file = home / "artifact-map.yaml"
        if map_file.is_file():
            try:
                data = yaml.safe_load(map_file.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ArtifactError(f"cannot read {map_file}: {exc}") from exc
            if not isinstance(data, dict):
                raise ArtifactError(f"{map_file} must map URL prefixes to folders")
            pairs.update({str(k): str(v) for k, v in data.items()})
        for item in os.environ.get("ORBIS_ARTIFACT_MAP", "").split(","):
            prefix, sep, folder = item.strip().partition("=")
            if sep and prefix and folder:
                pairs[prefix] = folder  # the environment wins over the file
        mapping = sorted(
            ((p, Path(f).expanduser()) for p, f in pairs.items()), key=lambda pf: -len(pf[0])
        )
        return cls(
            cache_dir=home / "cache" / "artifacts",
            ttl=float(os.environ.get("ORBIS_ARTIFACT_TTL") or DEFAULT_TTL),
            timeout=float(os.environ.get("ORBIS_ARTIFACT_TIMEOUT") or DEFAULT_TIMEOUT),
            mapping=mapping,
            policy=FetchPolicy.from_env(),
        )


def local_copy(url: str, settings: ArtifactSettings | None = None) -> Path | None:
    """The mirrored file standing for `url`, if a prefix maps it (existing or not)."""
    settings = settings or ArtifactSettings.from_env()
    for prefix, folder in settings.mapping:
        if url.startswith(prefix):
            rest = unquote(url[len(prefix) :]).lstrip("/")
            path = (folder / rest).resolve()
            if folder.resolve() not in (path, *path.parents):  # no '..' out of the mirror
                raise ArtifactError(f"artifact {url}: path escapes the mirror folder {folder}")
            return path
    return None


def cache_path(url: str, settings: ArtifactSettings) -> Path:
    return settings.cache_dir / hashlib.sha256(url.encode()).hexdigest()


def fetch(url: str, settings: ArtifactSettings | None = None) -> str:
    """The text of an artifact URL (see the module docstring for the order of sources)."""
    settings = settings or ArtifactSettings.from_env()
    mirrored = local_copy(url, settings)
    if mirrored is not None:
        try:
            return mirrored.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            cause = getattr(exc, "strerror", None) or str(exc)
            raise ArtifactError(
                f"artifact {url}: mapped to {mirrored}, which cannot be read: {cause}"
            ) from exc
    if url.startswith("file://"):
        raise ArtifactError(f"artifact {url}: file URLs are not read on the server")
    if not url.startswith(("http://", "https://")):
        raise ArtifactError(f"artifact {url}: only http(s) URLs can be fetched")
    cached = cache_path(url, settings)
    age = time.time() - cached.stat().st_mtime if cached.is_file() else None
    if age is not None and age < settings.ttl:
        return cached.read_text(encoding="utf-8")
    try:
        text = _download(url, settings)
    except ArtifactError as exc:
        refused = isinstance(exc.__cause__, FetchRefused)  # a rule: no stale copy either
        if age is not None and not refused:  # stale beats nothing: configure offline
            return cached.read_text(encoding="utf-8")
        raise
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.part")
    partial.write_text(text, encoding="utf-8")
    partial.replace(cached)  # atomic: concurrent deployments never read half a file
    return text


def _download(url: str, settings: ArtifactSettings) -> str:
    policy = replace(settings.policy, read_timeout=settings.timeout)
    try:
        body = download(url, policy)
    except FetchError as exc:
        cause = exc.reason if exc.url == url else str(exc)  # a later redirect hop: name it
        raise ArtifactError(f"artifact {url} could not be fetched: {cause}") from exc
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"artifact {url} is not UTF-8 text") from exc


def node_path(url: str, default: str) -> str:
    """/tmp/<the URL's file name> on a node; a name like '..' becomes `default`."""
    name = PurePosixPath(urlparse(url).path).name
    return f"/tmp/{name if name not in ('', '.', '..') else default}"


def artifact_downloads(inputs: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """IM's get_artifact input: a task downloading the file to /tmp/<basename> on the node,
    and the inputs with that path in its place."""
    tasks: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    for key, value in inputs.items():
        if isinstance(value, Function) and value.name == "get_artifact":
            url = str(value.args[2]) if len(value.args) > 2 else ""
            if "://" not in url or url.startswith("file://"):
                raise ArtifactError(
                    f"artifact {url or value.args[1]!r}: only URLs can be downloaded to the nodes"
                )
            dest = node_path(url, "artifact")
            tasks.append(
                {
                    "name": f"download {value.args[1]}",
                    "ansible.builtin.get_url": {"url": url, "dest": dest, "mode": "0755"},
                }
            )
            out[key] = dest
        else:
            out[key] = value
    return tasks, out


def script_play(url: str, text: str, variables: dict[str, Any]) -> dict[str, Any]:
    """A non-playbook recipe (e.g. a shell script): copied to /tmp/<basename>, run with the
    operation inputs as environment variables (as IM does)."""
    dest = node_path(url, "script")
    env = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in variables.items()}
    return {
        "name": f"run {dest}",
        "tasks": [
            {"ansible.builtin.copy": {"content": text, "dest": dest, "mode": "0755"}},
            {"ansible.builtin.command": dest, "environment": env},
        ],
    }
