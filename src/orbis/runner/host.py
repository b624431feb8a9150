"""The opt-in for a single-user install (ORBIS_UNSAFE_RECIPES_ON_HOST=1): recipes run on the
service host, as the service's user. Still with an environment made from nothing (no secret
of the service's reaches a play) and per-infrastructure SSH state, but a play can do whatever
that user can: never for a service that others use (docs/runner.md)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from contextlib import suppress
from pathlib import Path, PurePosixPath

from orbis.configure.ansible import CALLBACK_DIR, ROLES_DIR
from orbis.configure.storage import SCRIPT as DISKS_SCRIPT
from orbis.runner.base import Runner, RunnerPaths, keep_tail

BIN_DIR = Path(sys.executable).parent  # the service's venv: ansible-playbook, ansible-galaxy


class HostRunner(Runner):
    where = "the service host (ORBIS_UNSAFE_RECIPES_ON_HOST=1)"
    shares_folder = True

    def __init__(self, workspace: Path, key_file: Path) -> None:
        self.workspace = workspace
        # short (sockets have a length limit) and this infrastructure's own
        self._home = Path(tempfile.mkdtemp(prefix="orbis-runner-"))
        self.paths = RunnerPaths(
            workspace=PurePosixPath(workspace), key_file=PurePosixPath(key_file),
            callback_dir=PurePosixPath(CALLBACK_DIR), roles_dir=PurePosixPath(ROLES_DIR),
            scripts_dir=PurePosixPath(DISKS_SCRIPT.parent),
            home=PurePosixPath(self._home), tmp=PurePosixPath(self._home / "tmp"),
        )  # fmt: skip

    async def run(self, argv: list[str], env: dict[str, str], *, timeout: float,
                  tag: str) -> tuple[int, str]:  # fmt: skip
        path = f"{BIN_DIR}:/usr/local/bin:/usr/bin:/bin"
        proc = await asyncio.create_subprocess_exec(
            str(BIN_DIR / argv[0]), *argv[1:], stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, cwd=str(self.workspace),
            env={"PATH": path, "HOME": str(self._home), "LANG": "C.UTF-8", **env},
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        chunks: list[bytes] = []

        async def read() -> None:
            size = 0
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                size = keep_tail(chunks, size, chunk)
            await proc.wait()

        try:
            await asyncio.wait_for(read(), timeout)
        except TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            chunks.append(f"{argv[0]} timed out after {timeout:.0f} s\n".encode())
            return 124, b"".join(chunks).decode(errors="replace")
        except asyncio.CancelledError:
            _kill_group(proc.pid)  # the deployment was cancelled: Ansible must not go on
            await asyncio.shield(proc.wait())  # reaped now, not by a loop that may be gone
            raise
        code = proc.returncode if proc.returncode is not None else 255
        return code, b"".join(chunks).decode(errors="replace")

    async def close(self) -> None:
        shutil.rmtree(self._home, ignore_errors=True)


def _kill_group(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _die_with_parent() -> None:
    """In the child: be killed when the service dies, so that a restarted service never runs
    alongside an orphaned Ansible of its previous life (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
