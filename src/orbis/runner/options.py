"""The runner container's options, in one pure function (unit-tested as such).

What a user's play may touch from inside: its own infrastructure's runner folder (rw), the
infrastructure's SSH key and Orbis' callback plugin and roles (all read-only), a tmpfs /tmp and
HOME, and that infrastructure's network. No capabilities, no privilege gain, a read-only root,
bounded processes, memory and CPU, and an environment made here from nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from docker.types import Mount

from orbis.configure.storage import SCRIPT as DISKS_SCRIPT
from orbis.providers.base import LABEL_INFRASTRUCTURE, LABEL_INSTALLATION, LABEL_RUNNER
from orbis.runner.base import RunnerPaths

PATHS = RunnerPaths(
    workspace=PurePosixPath("/orbis/work"),
    key_file=PurePosixPath("/orbis/key/id_ed25519"),
    callback_dir=PurePosixPath("/orbis/callback_plugins"),
    roles_dir=PurePosixPath("/orbis/roles"),
    scripts_dir=PurePosixPath("/orbis/scripts"),
    home=PurePosixPath("/root"),
    tmp=PurePosixPath("/tmp"),
)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Limits:
    cpus: float = 2.0
    memory_mb: int = 2048
    pids: int = 1024
    tmp_mb: int = 256  # tmpfs sizes count against the memory limit too
    home_mb: int = 64


def container_name(infrastructure_id: str) -> str:
    # a node's name always ends in "-<vm id>": this one cannot collide with it
    return f"orbis-{infrastructure_id}-runner"


def runner_labels(infrastructure_id: str, installation: str | None) -> dict[str, str]:
    labels = {LABEL_INFRASTRUCTURE: infrastructure_id, LABEL_RUNNER: "true"}
    if installation:
        labels[LABEL_INSTALLATION] = installation
    return labels


def container_options(
    *, infrastructure_id: str, installation: str | None, image: str, network: str,
    workspace: Path, key_file: Path, callback_dir: Path, roles_dir: Path, limits: Limits,
) -> dict[str, Any]:  # fmt: skip
    """Keyword arguments of docker's `containers.create` for one infrastructure's runner."""
    mounts = [
        Mount(str(PATHS.workspace), str(workspace), type="bind", read_only=False),
        Mount(str(PATHS.key_file), str(key_file), type="bind", read_only=True),
        Mount(str(PATHS.callback_dir), str(callback_dir), type="bind", read_only=True),
        Mount(str(PATHS.roles_dir), str(roles_dir), type="bind", read_only=True),
        # the one script of Orbis' that plays run on nodes: this file only, not its folder
        Mount(str(PATHS.scripts_dir / DISKS_SCRIPT.name), str(DISKS_SCRIPT), type="bind",
              read_only=True),
    ]
    return {
        "image": image,
        "command": ["sleep", "infinity"],  # commands come by exec, one per level
        "name": container_name(infrastructure_id),
        "hostname": "orbis-runner",
        "labels": runner_labels(infrastructure_id, installation),
        "network": network,
        "environment": {"PATH": PATH, "HOME": str(PATHS.home), "LANG": "C.UTF-8"},
        "working_dir": str(PATHS.workspace),
        "privileged": False,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": {
            str(PATHS.tmp): f"rw,nosuid,nodev,size={limits.tmp_mb}m,mode=1777",
            str(PATHS.home): f"rw,nosuid,nodev,size={limits.home_mb}m,mode=0700",
        },
        "mounts": mounts,
        "pids_limit": limits.pids,
        "mem_limit": limits.memory_mb * 2**20,
        "memswap_limit": limits.memory_mb * 2**20,  # no swap beyond the memory limit
        "nano_cpus": int(limits.cpus * 1e9),
        "stop_signal": "SIGKILL",  # sleep ignores SIGTERM as PID 1; nothing to shut down
        "detach": True,
    }
