"""The built-in first configuration step of a node with data disks: format and mount them
where the template says (IM does this in its contextualization). The work is done on the node
by `disks.py`; this module decides which disks it gets and writes the play that runs it."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import yaml

from orbis.model.infrastructure import Compute

SCRIPT = Path(__file__).with_name("disks.py")


def mountable(compute: Compute) -> list[dict[str, Any]]:
    """The disks to prepare: those with a mount path (IM formats what it mounts), and swap."""
    return [
        {"index": v.index, "size": v.size, "device": v.device, "volume_id": v.volume_id,
         "fs_type": v.fs_type, "mount_path": v.mount_path}
        for v in sorted(compute.volumes, key=lambda v: v.index)
        if v.mount_path or (v.fs_type or "").lower() == "swap"
    ]  # fmt: skip


def playbook(disks: list[dict[str, Any]]) -> str:
    """One play: run disks.py as root on the node; its JSON answer says what changed."""
    task = {
        "name": "Data disks formatted and mounted",
        "ansible.builtin.script": {
            "cmd": f"{SCRIPT} {shlex.quote(json.dumps(disks, separators=(',', ':')))}",
            "executable": "python3",
        },
        "register": "orbis_disks",
        "changed_when": "(orbis_disks.stdout | from_json).changed",
    }
    # root already (local and Kubernetes nodes) needs no sudo, which such images may lack
    play = {"name": "data disks", "hosts": "all", "gather_facts": False,
            "become": "{{ ansible_user != 'root' }}", "tasks": [task]}  # fmt: skip
    return yaml.safe_dump([play], sort_keys=False)
