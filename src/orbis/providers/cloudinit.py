"""The cloud-init document a cloud VM boots with: the login user and Orbis's key.

Follows what IM does, so images and recipes written for IM behave the same: the user's own
`cloud_init` recipe is the start; a recipe that is not a YAML mapping is sent as it is; otherwise
one sudo user (default `cloudadm`) with the infrastructure's public key is added, with IM's
merge rule so the image's own cloud-config is extended rather than replaced.
"""

from __future__ import annotations

from typing import Any

import yaml

DEFAULT_USER = "cloudadm"
MERGE_HOW = "list(append)+dict(recurse_array,no_replace)+str()"


def user_data(
    public_key: str, *, user: str = DEFAULT_USER, recipe: str | None = None, ssh_port: int = 22
) -> str:
    """A `#cloud-config` document (or the user's raw recipe when it is not a mapping)."""
    document: dict[str, Any] = {}
    if recipe:
        try:
            parsed = yaml.safe_load(recipe)
        except yaml.YAMLError:
            parsed = None
        if not isinstance(parsed, dict):
            return recipe  # a shell script or another format: the user knows best
        document = parsed
    entry = {
        "name": user,
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
        "lock-passwd": True,
        "homedir": f"/opt/{user}" if user == DEFAULT_USER else f"/home/{user}",
        "shell": "/bin/bash",
        "ssh-authorized-keys": [public_key.strip()],
    }
    document.setdefault("users", ["default"])
    document["users"] = [*document["users"], entry]
    if ssh_port != 22:
        document.setdefault("bootcmd", []).append(
            f"sed -i 's/^#*Port .*/Port {ssh_port}/' /etc/ssh/sshd_config"
        )
    document["merge_how"] = MERGE_HOW
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False)
