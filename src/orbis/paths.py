"""Ids the server makes, and the only way to turn an id into a path under ORBIS_HOME.

An id reaches us from URLs and from imported data, so it is untrusted text: `..`, `/`, NUL or a
very long string must never become a folder that a destroy removes. Every path built from an id
goes through `id_folder`, which checks the id's shape and that the resolved path stays inside
the folder it belongs to (itself inside ORBIS_HOME).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

# Letters, digits, '-' and '_'; 36 characters at most (a UUID; the store's column size).
# No '.', '/', '\\', '%', NUL or spaces: nothing that a file system or URL decoder reads as a step.
ID_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,35}")
VM_IDS_SHAPE = re.compile(r"[0-9]{1,9}( *, *[0-9]{1,9})*")  # IM's "1,3,4" lists of VM numbers


class UnsafeId(ValueError):
    """An id that is not of the server's shape, or whose path would leave ORBIS_HOME."""


def new_id() -> str:
    """A fresh infrastructure id: random (uuid4), never derived from a client's data."""
    return str(uuid.uuid4())


def is_safe_id(value: object) -> bool:
    return isinstance(value, str) and ID_SHAPE.fullmatch(value) is not None


def check_id(value: object, what: str = "infrastructure id") -> str:
    if not is_safe_id(value):
        shown = repr(value)[:60]
        raise UnsafeId(f"{what} {shown} is not a valid id (letters, digits, '-', '_'; at most "
                       f"36 characters)")  # fmt: skip
    assert isinstance(value, str)
    return value


def id_folder(root: Path, infra_id: str) -> Path:
    """`root/<infra_id>`, after checking the id's shape and that the resolved path is a child
    of `root` (a symlink planted under root cannot lead out either)."""
    check_id(infra_id)
    base = root.resolve()
    folder = (base / infra_id).resolve()
    if folder.parent != base:
        raise UnsafeId(f"the folder of infrastructure {infra_id!r} would be {folder}, outside "
                       f"{base}")  # fmt: skip
    return folder


def private_folder(folder: Path) -> Path:
    """Create `folder` (and missing parents) readable by the service's user only (0700)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)  # mkdir's mode is masked by umask, and skipped if it exists
    return folder
