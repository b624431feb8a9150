"""The built-in first configuration step of a node with data disks: format and mount them
where the template says (IM does this in its contextualization). The work is done on the node
by `disks.py`; this module decides which disks it gets and writes the play that runs it."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from orbis.model.infrastructure import Compute, Volume

SCRIPT = Path(__file__).with_name("disks.py")


def mountable(compute: Compute | Iterable[Volume]) -> list[dict[str, Any]]:
    """The disks to prepare: those with a mount path (IM formats what it mounts), and swap."""
    volumes = compute.volumes if isinstance(compute, Compute) else list(compute)
    return [
        {"index": v.index, "size": v.size, "device": v.device, "volume_id": v.volume_id,
         "fs_type": v.fs_type or ("ext4" if v.mount_path else None), "mount_path": v.mount_path}
        for v in sorted(volumes, key=lambda v: v.index)
        if v.mount_path or (v.fs_type or "").lower() == "swap"
    ]  # fmt: skip


def shell_command(disks: list[dict[str, Any]], *, sudo: bool) -> str:
    """Run disks.py read from standard input (no copy step: one SSH command)."""
    run = f"python3 - {shlex.quote(json.dumps(disks, separators=(',', ':')))}"
    return f"sudo -n {run}" if sudo else run


def playbook(disks: list[dict[str, Any]]) -> str:
    """One play: run disks.py as root on the node; its JSON answer says what changed."""
    task = {
        "name": "Data disks formatted and mounted",
        "ansible.builtin.script": {
            # where the runner sees Orbis' scripts (orbis_scripts_dir, set by the inventory)
            "cmd": f"{{{{ orbis_scripts_dir }}}}/{SCRIPT.name} "
            f"{shlex.quote(json.dumps(disks, separators=(',', ':')))}",
            "executable": "python3",
        },
        "register": "orbis_disks",
        "changed_when": "(orbis_disks.stdout | from_json).changed",
    }
    # root already (local and Kubernetes nodes) needs no sudo, which such images may lack
    play = {"name": "data disks", "hosts": "all", "gather_facts": False,
            "become": "{{ ansible_user != 'root' }}", "tasks": [task]}  # fmt: skip
    return yaml.safe_dump([play], sort_keys=False)
