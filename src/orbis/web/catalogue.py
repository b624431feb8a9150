"""The template catalogue the dashboard offers: cards read from the operator's folder.

The IM Dashboard's rules (../shared/reference/catalogue-format.md §0-§2.1): every `*.yml|yaml`
under the folder (not `.`-prefixed, not `*.parameters.*`) that is a TOSCA document is a template
whose id is its relative path, unless its `metadata.tag` is one the operator hides (IM's
HIDE_TOSCA_TAGS: ORBIS_CATALOGUE_HIDE_TAGS); templates with `metadata.parents` are add-ons (not
cards); cards are sorted by `metadata.order` (stable). A card of a base with `childs` offers
those add-ons; a `link` card stands for its parent with add-ons chosen. Files are re-read when
they change (by modification time), so an operator's edit shows without a restart.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

import orbis

MAX_FILE_BYTES = 1 << 20  # a catalogue template larger than this is skipped
DEFAULT_ORDER = 99999999
MAX_ICON_BYTES = 512 * 1024
ICON_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".gif": "image/gif", ".webp": "image/webp", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Entry:
    """One catalogue template, as its card and form need it."""

    id: str
    path: Path
    display_name: str
    template_name: str
    description: str
    version: str = ""
    icon: str = ""
    tag: str = ""
    tag_color: str = ""
    web: str = ""
    order: int = DEFAULT_ORDER
    parents: tuple[str, ...] = ()
    childs: tuple[str, ...] = ()
    link_parent: str | None = None
    link_childs: tuple[str, ...] = ()
    vos: tuple[str, ...] = ()  # offered only to users of one of these VOs (none: everyone)
    inputs: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_card(self) -> bool:
        return not self.parents

    def offered_to(self, vos: list[str]) -> bool:
        """`metadata.vos`: only users in one of them see the template (the Dashboard's rule)."""
        return not self.vos or any(vo in self.vos for vo in vos)

    @property
    def icon_url(self) -> str:
        """`metadata.icon` when it is an http(s) address (the Dashboard's rule: a URL when it
        starts with http), else "" (a file of the catalogue, or something unsafe to show)."""
        return icon_url(self.icon)

    @property
    def initials(self) -> str:
        words = [w for w in self.display_name.replace("-", " ").split() if w[:1].isalnum()]
        return "".join(w[0] for w in words[:2]).upper() or "T"


MAX_ICON_URL = 2048


def icon_url(text: str) -> str:
    """`text` if it is an absolute http(s) URL with a host and no white space, else ""."""
    if len(text) > MAX_ICON_URL or any(c.isspace() or ord(c) < 32 for c in text):
        return ""
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    return text if parts.scheme in ("http", "https") and parts.hostname else ""


def default_folder() -> Path | None:
    """The repository's examples/catalogue (a development checkout), if there is one."""
    candidate = Path(orbis.__file__).resolve().parents[2] / "examples" / "catalogue"
    return candidate if candidate.is_dir() else None


class Catalogue:
    """The templates of one folder, re-read when a file changes."""

    def __init__(self, folder: Path | None, hide_tags: tuple[str, ...] = ()) -> None:
        self.folder = folder.resolve() if folder else None
        self.hide_tags = hide_tags  # templates with one of these `metadata.tag`s are not loaded
        self._lock = threading.Lock()
        self._seen: dict[Path, tuple[float, Entry | None]] = {}

    def entries(self) -> list[Entry]:
        """Every template (cards and add-ons), sorted by `order`, then file name."""
        if self.folder is None or not self.folder.is_dir():
            return []
        with self._lock:
            found = []
            present = set()
            for path in sorted(self._files()):
                present.add(path)
                mtime = path.stat().st_mtime
                cached = self._seen.get(path)
                if cached is None or cached[0] != mtime:
                    cached = (mtime, _read(path, self.folder))
                    self._seen[path] = cached
                if cached[1] is not None and cached[1].tag not in self.hide_tags:
                    found.append(cached[1])
            self._seen = {p: v for p, v in self._seen.items() if p in present}
        return sorted(found, key=lambda e: e.order)

    def cards(self) -> list[Entry]:
        return [e for e in self.entries() if e.is_card]

    def icon_file(self, entry: Entry) -> Path | None:
        """The card's icon as a file of the catalogue folder (relative to the template's folder
        or the catalogue's), or None (an URL, a missing file, not an image, too large)."""
        if self.folder is None or not entry.icon or "://" in entry.icon:
            return None
        for root in (entry.path.parent, self.folder):
            candidate = (root / entry.icon).resolve()
            if (candidate.is_relative_to(self.folder) and candidate.suffix.lower() in ICON_TYPES
                    and candidate.is_file() and candidate.stat().st_size <= MAX_ICON_BYTES):
                return candidate
        return None

    def get(self, template_id: str) -> Entry | None:
        return next((e for e in self.entries() if e.id == template_id), None)

    def _files(self) -> list[Path]:
        assert self.folder is not None
        out = []
        for root, dirs, files in os.walk(self.folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if name.startswith(".") or not name.endswith((".yml", ".yaml")):
                    continue
                if name.endswith((".parameters.yml", ".parameters.yaml")):
                    continue
                out.append(Path(root) / name)
        return out


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _read(path: Path, folder: Path) -> Entry | None:
    """The entry of one file, or None when it is not a TOSCA template (a playbook, say)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(doc, dict) or "tosca_definitions_version" not in doc:
        return None
    meta: dict[str, Any] = _mapping(doc.get("metadata"))
    template_id = path.relative_to(folder).as_posix()
    link = meta.get("link") if isinstance(meta.get("link"), dict) else None
    inputs = _mapping(_mapping(doc.get("topology_template")).get("inputs"))
    try:
        order = int(meta.get("order", DEFAULT_ORDER))
    except (TypeError, ValueError):
        order = DEFAULT_ORDER
    # ids in metadata are relative to the catalogue root (the Dashboard's); ours may be relative
    # to the file's folder too: normalise them to root-relative ids
    def ids(values: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for value in values:
            here = (path.parent / value).resolve()
            if here.is_file() and here.is_relative_to(folder):
                out.append(here.relative_to(folder).as_posix())
            else:
                out.append(value)
        return tuple(out)

    return Entry(
        id=template_id,
        path=path,
        display_name=str(meta.get("display_name") or template_id),
        template_name=str(meta.get("template_name") or path.stem),
        description=str(doc.get("description") or "TOSCA Template").strip(),
        version=str(meta.get("template_version") or ""),
        icon=str(meta.get("icon") or ""),
        tag=str(meta.get("tag") or ""),
        tag_color=str(meta.get("tag_color") or ""),
        web=str(meta.get("web") or ""),
        order=order,
        parents=ids(_strings(meta.get("parents"))),
        childs=ids(_strings(meta.get("childs"))),
        link_parent=ids((str(link["parent"]),))[0] if link and link.get("parent") else None,
        link_childs=ids(_strings(link.get("childs"))) if link else (),
        inputs=inputs,
        vos=_strings(meta.get("vos")),
    )
