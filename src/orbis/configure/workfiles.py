"""Files in an infrastructure's work folder, written and read without following a symlink.

The work folder is handed to what runs a user's recipes (Ansible today, the runner
container tomorrow), so any entry in it may have been replaced by a link to a file of the
server — `id_ed25519 -> /home/orbis/.bashrc`, `events.jsonl -> /etc/shadow`. So a name is one
plain component (no '/', no '..'), the folder is opened without following a link, a file is
written to a fresh temporary name and renamed over the old entry (a planted link is replaced,
its target never touched), and a file is read with O_NOFOLLOW (a link is refused).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


class WorkFileError(OSError):
    """A name or entry of the work folder that would lead outside it; the text says which."""


def check_name(name: str) -> str:
    """`name` itself when it is one plain file name; else WorkFileError naming the rule."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise WorkFileError(f"'{name}' is not a plain file name: it could leave its folder")
    return name


@contextlib.contextmanager
def _folder_fd(folder: Path) -> Iterator[int]:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise WorkFileError(f"work folder {folder}: {exc.strerror} (symlinks refused)") from None
    try:
        yield fd
    finally:
        os.close(fd)


def make_folder(folder: Path, mode: int = 0o700) -> Path:
    """Create `folder` (and parents) unless it exists; a symlink in its place is refused."""
    folder.mkdir(parents=True, exist_ok=True, mode=mode)
    with _folder_fd(folder):
        pass
    return folder


def write_file(folder: Path, name: str, data: str | bytes, mode: int = 0o600) -> Path:
    """Write `folder/name` atomically; an existing link there is replaced, never followed."""
    check_name(name)
    raw = data.encode() if isinstance(data, str) else data
    with _folder_fd(folder) as dir_fd:
        temporary = f".{name}.{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(temporary, flags, mode, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(raw)
            os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=dir_fd)
            raise
    return folder / name
