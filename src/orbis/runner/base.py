"""What the configuration code needs from a runner: a folder to hand it files, the paths it
sees them at, and a way to run one command there."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

OUTPUT_LIMIT = 1 << 20  # bytes of a command's output kept (its end): a play may print without end


class RunnerError(Exception):
    """A command could not be run in the runner (the engine's words)."""


class RunnerUnavailable(RunnerError):
    """There is nowhere safe to run recipes; the message says why and what would fix it."""


@dataclass(frozen=True)
class RunnerPaths:
    """Paths as commands in the runner see them."""

    workspace: PurePosixPath  # the infrastructure's runner folder (playbooks, events, roles)
    key_file: PurePosixPath  # the infrastructure's SSH private key (read-only)
    callback_dir: PurePosixPath  # Orbis' callback plugin (read-only)
    roles_dir: PurePosixPath  # the roles Orbis ships (read-only)
    scripts_dir: PurePosixPath  # Orbis' own scripts plays copy to nodes (disks.py; read-only)
    home: PurePosixPath  # HOME: SSH control sockets and known_hosts, this runner's only
    tmp: PurePosixPath  # Ansible's local temporary files


class Runner(ABC):
    """One infrastructure's place to run ansible-playbook / ansible-galaxy."""

    #: the folder (on the service host) that commands see as `paths.workspace`
    workspace: Path
    paths: RunnerPaths
    #: what the node log says about where recipes ran
    where: str = "runner"
    #: the folder of Mitogen's Ansible strategy plugins in the runner; None: it has none
    mitogen: str | None = None
    #: on the service's machine (so at its network position): downloads need the address rule
    on_service_host: bool = True
    #: a command sees files the service writes in `workspace` while it runs (not a copy sent
    #: with the command): a playbook can be started ahead and handed its level later
    shares_folder: bool = False

    @abstractmethod
    async def run(self, argv: list[str], env: dict[str, str], *, timeout: float,
                  tag: str) -> tuple[int, str]:  # fmt: skip
        """Run `argv` in the workspace with exactly `env` (plus PATH/HOME); return its exit
        status and the end of its output. `tag` is unique to this call: cancelling the call
        kills what it started. A timeout kills it too and returns a non-zero status."""

    @abstractmethod
    async def close(self) -> None:
        """Remove what this runner holds (the container); it may not be used afterwards."""


def keep_tail(chunks: list[bytes], size: int, chunk: bytes) -> int:
    """Append `chunk`, dropping the oldest chunks beyond OUTPUT_LIMIT; return the new size."""
    chunks.append(chunk)
    size += len(chunk)
    while size > OUTPUT_LIMIT and len(chunks) > 1:
        size -= len(chunks.pop(0))
    return size
