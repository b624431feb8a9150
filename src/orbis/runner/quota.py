"""The disk quota of an infrastructure's runner folder (playbooks, events, artifacts, Galaxy
roles, what plays `fetch` to the controller).

The folder is on the service host's disk and in the reach of the user's plays, so a play could
fill the disk (`dd` to it, `fetch` a node's big file). While a command runs in the runner the
folder is measured every `interval` seconds (allocated blocks, so a sparse file counts what it
really uses, and entries, so a million empty files count too; links never followed); past
ORBIS_RUNNER_WORK_MB (default 1024) or ORBIS_RUNNER_WORK_FILES (default 100000) the command is
cancelled, which removes the runner container (or kills the host/front-end command), and the
step fails naming the limit. A folder already past it fails the next command at once.
Overshoot is bounded by what a play writes in one interval.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from orbis.runner.base import Runner

MB_SETTING = "ORBIS_RUNNER_WORK_MB"
FILES_SETTING = "ORBIS_RUNNER_WORK_FILES"


@dataclass(frozen=True)
class WorkQuota:
    max_bytes: int = 1024 * 2**20
    max_entries: int = 100_000
    interval: float = 1.0

    @classmethod
    def from_env(cls) -> WorkQuota:
        env = os.environ.get
        return cls(max_bytes=int(env(MB_SETTING) or 1024) * 2**20,
                   max_entries=int(env(FILES_SETTING) or cls.max_entries))  # fmt: skip

    def refusal(self, folder: Path) -> str | None:
        """None while `folder` is within the quota; else the message naming the limit."""
        size, entries = measure(folder, self.max_bytes, self.max_entries)
        if size > self.max_bytes:
            return (f"the runner folder passed its disk quota of "
                    f"{self.max_bytes // 2**20} MB ({MB_SETTING})")  # fmt: skip
        if entries > self.max_entries:
            return (f"the runner folder passed its quota of {self.max_entries} files "
                    f"({FILES_SETTING})")  # fmt: skip
        return None


def measure(folder: Path, max_bytes: int, max_entries: int) -> tuple[int, int]:
    """(allocated bytes, entries) under `folder`, without following links; the walk stops
    as soon as either passes its maximum (it need not count further)."""
    size = entries = 0
    pending = [str(folder)]
    while pending:
        try:
            with os.scandir(pending.pop()) as it:
                for entry in it:
                    entries += 1
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue  # removed meanwhile
                    size += st.st_blocks * 512
                    if size > max_bytes or entries > max_entries:
                        return size, entries
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
        except OSError:
            continue  # a folder removed or made unreadable meanwhile
    return size, entries


async def run_within_quota(
    runner: Runner, argv: list[str], env: dict[str, str], *, timeout: float, tag: str,
    quota: WorkQuota | None = None, started: asyncio.Task[tuple[int, str]] | None = None,
) -> tuple[int, str, str | None]:  # fmt: skip
    """`runner.run(...)` watched by the folder's quota: (status, output, None), or, past the
    quota, the command cancelled and (1, output, the refusal naming the limit). `started`: the
    command's run began earlier (a playbook started ahead): watched instead of a new one."""
    quota = quota or WorkQuota.from_env()
    refusal = await asyncio.to_thread(quota.refusal, runner.workspace)
    if refusal is not None:
        if started is not None:
            started.cancel()  # as past the quota mid-run: the runner kills it
            await asyncio.gather(started, return_exceptions=True)
        return 1, f"{refusal}\n", refusal
    run = started or asyncio.create_task(runner.run(argv, env, timeout=timeout, tag=tag))
    try:
        while True:
            done, _ = await asyncio.wait({run}, timeout=quota.interval)
            if done:
                code, output = run.result()
                return code, output, None
            refusal = await asyncio.to_thread(quota.refusal, runner.workspace)
            if refusal is not None:
                run.cancel()  # the runner kills the command (removes its container)
                await asyncio.gather(run, return_exceptions=True)
                return 1, f"{refusal}: the command was stopped\n", refusal
    except asyncio.CancelledError:
        run.cancel()
        raise
