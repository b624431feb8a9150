"""Which files a template may pull in: the rule that keeps the server's own files out.

A template arrives at the server as text; the server has no client file system. So on the
server an import or `template_file` resolves only to
  (a) the type sets and templates shipped with Orbis (offline),
  (b) http(s) URLs, through the artifact mirrors, cache and the guarded download
      (orbis.configure.artifacts, orbis.net.fetch),
  (c) files sent with the template: the CLI inlines the user's local imports, so any other
      relative name is simply not there.
A name of the server's disk (`/etc/passwd`, `file://`, `../..`, `~root`, `/dev/zero`) is a
template error naming this rule. Only the CLI, on the user's own machine, reads local files
(`Sources(local_files=True)`), and even there only regular files under a size cap.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

RULE = (
    "on the server, imports resolve only to the shipped type sets, http(s) URLs and files "
    "sent with the template (orbis create/deploy inlines local imports)"
)
FILE_RULE = (
    "on the server, recipes and artifacts are URLs, inline text or names of files sent with "
    "the template (orbis create/deploy inlines local playbooks)"
)
MAX_LOCAL_BYTES = 5 * 1024 * 1024  # a types file, not a disk image


@dataclass(frozen=True)
class Sources:
    """What a loader may read besides the template text itself."""

    local_files: bool = False  # the user's own files: the CLI only, never the server


SERVER = Sources()
CLIENT = Sources(local_files=True)


def outside_bundle(name: str) -> str | None:
    """Why a relative file name would leave the template's bundle, or None if it stays inside."""
    if name.startswith(("/", "~", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path names a file of the server"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "'..' leaves the template's bundle"
    return None


class LocalReadError(OSError):
    """A local file that is not a readable regular file under the cap; the text says why."""


def read_local(path: Path) -> str:
    """A local regular file's text: devices, FIFOs and files over the cap fail fast, unread."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open
    except OSError as exc:
        raise LocalReadError(exc.strerror or str(exc)) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise LocalReadError("not a regular file")
        data = handle.read(MAX_LOCAL_BYTES + 1)
    if len(data) > MAX_LOCAL_BYTES:
        raise LocalReadError(f"larger than {MAX_LOCAL_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise LocalReadError("not UTF-8 text") from None
