"""A server's user_data as one shell script, since the node image has no cloud-init.

The subset Orbis and IM send (providers/cloudinit.py, RADL `cloud_init` recipes): a `#!` script
runs as it is; a `#cloud-config` document applies, in cloud-init's order, `bootcmd`,
`write_files`, `users` (name, homedir, shell, sudo, groups, lock-passwd, ssh-authorized-keys in
either spelling; "default" is the image's default user: root here), the top-level
`ssh_authorized_keys` (for that default user) and `runcmd`. Other keys are listed as ignored,
as cloud-init warns of modules it does not run. Anything else (not a mapping, another format)
is refused: the stand-in would not know how to honour it.
"""

from __future__ import annotations

import base64
import shlex
from typing import Any

import yaml

IGNORED_QUIETLY = {"merge_how", "merge_type"}


class UserDataError(ValueError):
    """user_data the stand-in cannot apply."""


def script(user_data: str) -> tuple[str, list[str]]:
    """The shell script applying `user_data`, and the cloud-config keys it ignored."""
    if user_data.startswith("#!"):
        return user_data, []
    if not user_data.startswith("#cloud-config"):
        raise UserDataError("user_data is neither a #! script nor #cloud-config")
    try:
        doc = yaml.safe_load(user_data)
    except yaml.YAMLError as exc:
        raise UserDataError(f"cloud-config is not YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise UserDataError("cloud-config is not a mapping")
    lines = ["#!/bin/bash", "set -eu"]
    lines += [_command(c) for c in doc.get("bootcmd") or []]
    lines += [line for f in doc.get("write_files") or [] for line in _write_file(f)]
    for user in doc.get("users") or []:
        if user == "default":
            continue
        lines += _user(user)
    keys = doc.get("ssh_authorized_keys") or []
    if keys:
        lines += _keys("root", "/root", keys)
    lines += [_command(c) for c in doc.get("runcmd") or []]
    known = {"bootcmd", "write_files", "users", "ssh_authorized_keys", "runcmd"}
    ignored = sorted(k for k in doc if k not in known | IGNORED_QUIETLY)
    return "\n".join(lines) + "\n", ignored


def _command(command: Any) -> str:
    """cloud-init's rule: a string runs through the shell, a list is an argument vector."""
    if isinstance(command, list):
        return shlex.join(str(a) for a in command)
    return f"sh -c {shlex.quote(str(command))}"


def _write_file(entry: dict[str, Any]) -> list[str]:
    path, content = str(entry["path"]), str(entry.get("content", ""))
    if entry.get("encoding") in ("b64", "base64"):
        content = base64.b64decode(content).decode()
    redirect = ">>" if entry.get("append") else ">"
    lines = [f"mkdir -p {shlex.quote(path.rsplit('/', 1)[0] or '/')}",
             f"printf %s {shlex.quote(content)} {redirect} {shlex.quote(path)}"]  # fmt: skip
    if entry.get("permissions"):
        lines.append(f"chmod {shlex.quote(str(entry['permissions']))} {shlex.quote(path)}")
    if entry.get("owner"):
        lines.append(f"chown {shlex.quote(str(entry['owner']))} {shlex.quote(path)}")
    return lines


def _user(user: Any) -> list[str]:
    if isinstance(user, str):
        user = {"name": user}
    name = str(user["name"])
    home = str(user.get("homedir") or f"/home/{name}")
    q = shlex.quote
    lines = [f"id -u {q(name)} >/dev/null 2>&1 || useradd -m -d {q(home)} -s "
             f"{q(str(user.get('shell') or '/bin/sh'))} {q(name)}"]  # fmt: skip
    groups = user.get("groups")
    if groups:
        groups = groups if isinstance(groups, str) else ",".join(groups)
        lines.append(f"usermod -aG {q(groups)} {q(name)}")
    if user.get("lock-passwd", user.get("lock_passwd", True)):
        lines.append(f"passwd -l {q(name)} >/dev/null")
    sudo = user.get("sudo")
    if sudo:
        rules = [sudo] if isinstance(sudo, str) else list(sudo)
        body = "".join(f"{name} {rule}\n" for rule in rules)
        path = f"/etc/sudoers.d/90-cloud-init-users-{name}"
        lines += [f"printf %s {q(body)} > {q(path)}", f"chmod 0440 {q(path)}"]
    keys = user.get("ssh-authorized-keys") or user.get("ssh_authorized_keys") or []
    return lines + _keys(name, home, keys)


def _keys(name: str, home: str, keys: list[str]) -> list[str]:
    q = shlex.quote
    text = "".join(f"{str(k).strip()}\n" for k in keys)
    return [f"install -d -m 0700 -o {q(name)} {q(home + '/.ssh')}",
            f"printf %s {q(text)} >> {q(home + '/.ssh/authorized_keys')}",
            f"chown {q(name)}: {q(home + '/.ssh/authorized_keys')}",
            f"chmod 0600 {q(home + '/.ssh/authorized_keys')}"]  # fmt: skip
