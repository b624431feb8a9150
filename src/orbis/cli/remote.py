"""`orbis ssh`, `orbis get`, `orbis put`: a shell, a command or a file copy on a node, logged in
with the infrastructure's key, through the node's jump host when it has no public address (as
im_client's `ssh`/`sshvm`). OpenSSH's own `ssh`/`scp` do the work: the user's terminal, agent
forwarding and escape keys behave as they always do."""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from orbis.cli.client import ClientError, OrbisClient
from orbis.cli.console import app, client, fail

NODE_HELP = "VM id or node name (default: the first node with a public address)"
# node host keys are new with every node: no prompt, nothing written to ~/.ssh/known_hosts
QUIET = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes"]  # fmt: skip


class _SplitAtDashDash(TyperCommand):
    """Click drops `--` before binding arguments; remember what came after it (the command)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer vendors click
        ctx.meta["orbis.after_dashdash"] = args[args.index("--") + 1 :] if "--" in args else None
        return super().parse_args(ctx, args)


def pick_vm(detail: dict[str, Any], node: str | None) -> dict[str, Any]:
    """The VM a NODE argument names (its first VM for a node name with several)."""
    nodes = detail["nodes"]
    if not nodes:
        fail(f"{detail['id']} has no nodes")
    if node is None:
        public = [n for n in nodes if n.get("public_ip")]
        return (public or nodes)[0]
    for n in nodes:
        if str(n["vm_id"]) == node or n["name"] == node:
            return n
    names = ", ".join(sorted({n["name"] for n in nodes}))
    fail(f"no node '{node}' in {detail['id']} (nodes: {names})")
    raise AssertionError  # fail() exits


def ssh_options(login: dict[str, Any], key_file: Path) -> list[str]:
    """`ssh`/`scp` options that log in as Orbis does: the key, and the jump host if any."""
    options = ["-i", str(key_file), *QUIET]
    jump = login.get("jump")
    if jump:
        proxy = ["ssh", "-W", "%h:%p", "-i", str(key_file), "-p", str(jump["port"]), *QUIET,
                 f"{jump['user']}@{jump['address']}"]  # fmt: skip
        options += ["-o", "ProxyCommand=" + shlex.join(proxy)]
    return options


@contextmanager
def key_file(private_key: str) -> Iterator[Path]:
    """The key in a private temporary file, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="orbis-ssh-") as folder:
        path = Path(folder) / "id"
        path.touch(mode=0o600)
        path.write_text(private_key if private_key.endswith("\n") else private_key + "\n")
        yield path


def login_of(api: OrbisClient, infra_id: str, node: str | None) -> dict[str, Any]:
    try:
        vm = pick_vm(api.detail(infra_id), node)
        login: dict[str, Any] = api.json(
            f"/orbis/infrastructures/{infra_id}/vms/{vm['vm_id']}/login"
        )
    except ClientError as exc:
        fail(str(exc))
        raise
    if not login.get("address"):
        fail(f"{login['name']} (VM {login['vm_id']}) has no address yet (state {login['state']})")
    return login


def _run(argv: list[str]) -> None:
    code = subprocess.call(argv)
    if code != 0:
        raise typer.Exit(code)


@app.command(cls=_SplitAtDashDash, context_settings={"ignore_unknown_options": True})
def ssh(
    ctx: typer.Context,
    infra_id: str,
    words: list[str] = typer.Argument(None, help="[NODE] [-- COMMAND...]", show_default=False),
) -> None:
    """Open a shell on a node, or run a command there: orbis ssh ID [NODE] [-- CMD...]."""
    after = ctx.meta.get("orbis.after_dashdash")
    words = list(words or [])
    before = words[: len(words) - len(after)] if after is not None else words
    node, command = (before[0] if before else None), (after if after is not None else before[1:])
    login = login_of(client(), infra_id, node)
    with key_file(login["private_key"]) as key:
        # a command never prompts (scripts); a shell wants a terminal
        mode = ["-o", "BatchMode=yes"] if command else ["-t"]
        argv = ["ssh", *ssh_options(login, key), *mode, "-p", str(login["port"])]
        argv.append(f"{login['user']}@{login['address']}")
        if command:
            argv.append(shlex.join(command))
        _run(argv)


def _scp(infra_id: str, node: str, source: str, target: str, upload: bool) -> None:
    login = login_of(client(), infra_id, node)
    remote = f"{login['user']}@{login['address']}:"
    with key_file(login["private_key"]) as key:
        src, dst = (source, remote + target) if upload else (remote + source, target)
        _run(
            [
                "scp",
                "-q",
                "-r",
                *ssh_options(login, key),
                "-o",
                "BatchMode=yes",
                "-P",
                str(login["port"]),
                src,
                dst,
            ]
        )


@app.command()
def get(
    infra_id: str,
    node: str = typer.Argument(..., help=NODE_HELP),
    remote: str = typer.Argument(...),
    local: Path = typer.Argument(...),
) -> None:
    """Copy a file (or folder) from a node: orbis get ID NODE REMOTE LOCAL."""
    _scp(infra_id, node, remote, str(local), upload=False)


@app.command()
def put(
    infra_id: str,
    node: str = typer.Argument(..., help=NODE_HELP),
    local: Path = typer.Argument(...),
    remote: str = typer.Argument(...),
) -> None:
    """Copy a file (or folder) to a node: orbis put ID NODE LOCAL REMOTE."""
    if not local.exists():
        fail(f"{local}: no such file")
    _scp(infra_id, node, str(local), remote, upload=True)
