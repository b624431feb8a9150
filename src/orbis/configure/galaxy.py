"""Ansible Galaxy roles and collections a template asks for, installed before configuration.

They go into the infrastructure's work folder (on ANSIBLE_ROLES_PATH / ANSIBLE_COLLECTIONS_PATH
of its runs), once: ansible-galaxy skips what is already there. Roles shipped with Orbis need no
download; only what a template names is fetched. What cannot be installed is reported (the rest
is still installed), never a crash.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from orbis.configure.workfiles import WorkFileError, make_folder


class GalaxyError(Exception):
    """A role or collection could not be installed; the message is ansible-galaxy's."""


async def install(workdir: Path, roles: list[str], collections: list[str],
                  timeout: float = 600) -> str:  # fmt: skip
    """Install what is missing; return ansible-galaxy's output, or raise GalaxyError."""
    binary = Path(sys.executable).with_name("ansible-galaxy")
    for folder in ("roles", "collections"):  # a planted link would send the install elsewhere
        try:
            make_folder(workdir / folder)
        except WorkFileError as exc:
            raise GalaxyError(str(exc)) from None
    output = []
    jobs = []
    if roles:
        jobs.append(["role", "install", "--ignore-errors", "-p", str(workdir / "roles"),
                     *sorted(set(roles))])  # fmt: skip
    if collections:
        jobs.append(["collection", "install", "--ignore-errors", "-p", str(workdir / "collections"),
                     *sorted(set(collections))])  # fmt: skip
    for args in jobs:
        proc = await asyncio.create_subprocess_exec(
            str(binary), *args, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, cwd=str(workdir),
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            raise GalaxyError(f"ansible-galaxy {args[0]} install timed out") from None
        text = out.decode(errors="replace")
        output.append(text)
        missed = [line.strip() for line in text.splitlines() if "NOT installed" in line]
        if proc.returncode != 0 or missed:
            tail = "\n".join(missed or text.strip().splitlines()[-5:])
            raise GalaxyError(f"ansible-galaxy {args[0]} install failed: {tail}")
    return "".join(output)
