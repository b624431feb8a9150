"""Running Ansible playbooks from the service's host against the nodes, over SSH.

One `ansible-playbook` process runs per configuration level, holding every step of that level
(Ansible's start-up costs more than a small play, so one process per level instead of one per
node). A callback plugin writes each task result as a JSON line, from which each node gets its
own output per step, live.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orbis.configure.workfiles import make_folder, open_text, write_file

CALLBACK_DIR = Path(__file__).with_name("callback_plugins")
ROLES_DIR = Path(__file__).with_name("roles")  # roles shipped with Orbis (catalogue templates)
PLAY_KEYS = {"hosts", "tasks", "roles", "pre_tasks", "post_tasks", "handlers", "import_playbook"}


@dataclass(frozen=True)
class Target:
    """A node as Ansible reaches it."""

    host: str  # inventory name, e.g. "web_0"
    address: str
    user: str = "root"
    port: int = 22
    groups: tuple[str, ...] = ()
    variables: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    jump: str | None = None  # "user@host:port" of the node this one is reached through


@dataclass
class StepRun:
    """One step (a node's operations) to run on some hosts."""

    name: str
    hosts: list[str]
    plays: list[dict[str, Any]]
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass
class HostResult:
    ok: bool
    output: str


class PlaybookError(Exception):
    """A playbook could not be read or is not a playbook."""


def load_plays(text: str, origin: str) -> list[dict[str, Any]]:
    """The plays of a playbook text; a bare task list becomes one play."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlaybookError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise PlaybookError(f"{origin}: a playbook is a list of plays (or of tasks)")
    if any(PLAY_KEYS & item.keys() for item in data):
        return data
    return [{"name": origin, "tasks": data}]


def build_playbook(steps: list[StepRun]) -> list[dict[str, Any]]:
    """All steps' plays, each aimed at its step's host group, with the step's variables."""
    plays: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        for play in step.plays:
            play = {k: v for k, v in play.items() if k not in ("hosts", "connection")}
            play["name"] = f"{step.name}: {play.get('name', 'play')}"
            play["hosts"] = f"orbis_step_{index}"
            play["vars"] = {**(play.get("vars") or {}), **step.variables, "orbis_step": step.name}
            plays.append(play)
    return plays


def jump_args(jump: str, private_key_file: Path) -> str:
    """ssh options that reach a private node through `jump` ("user@host:port"). A ProxyCommand
    rather than ProxyJump: the jump login must use the infrastructure's key too, and ProxyJump
    would only offer the user's default keys."""
    login, _, port = jump.rpartition(":")
    proxy = (f"ssh -W %h:%p -q -i {private_key_file} -p {port} -o StrictHostKeyChecking=no "
             f"-o UserKnownHostsFile=/dev/null {login}")  # fmt: skip
    return f"-o ProxyCommand='{proxy}'"


def build_inventory(
    targets: list[Target], steps: list[StepRun], private_key_file: Path
) -> dict[str, Any]:
    hostvars = {
        t.host: {
            "ansible_host": t.address,
            "ansible_user": t.user,
            "ansible_port": t.port,
            "ansible_ssh_private_key_file": str(private_key_file),
            **({"ansible_ssh_common_args": jump_args(t.jump, private_key_file)} if t.jump else {}),
            **t.variables,
        }
        for t in targets
    }
    children: dict[str, Any] = {}
    for t in targets:
        for group in t.groups:
            children.setdefault(group, {"hosts": {}})["hosts"][t.host] = None
    for index, step in enumerate(steps):
        children[f"orbis_step_{index}"] = {"hosts": dict.fromkeys(step.hosts)}
    return {"all": {"hosts": hostvars, "children": children}}


def ansible_env(workdir: Path, events_file: Path) -> dict[str, str]:
    control_dir = Path("/tmp") / f"orbis-cp-{os.getuid()}"  # short: sockets have a length limit
    control_dir.mkdir(mode=0o700, exist_ok=True)
    return {
        **os.environ,
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s "
        "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACK_DIR),
        "ANSIBLE_ROLES_PATH": f"{workdir / 'roles'}:{ROLES_DIR}",
        "ANSIBLE_COLLECTIONS_PATH": f"{workdir / 'collections'}:"
        + os.environ.get("ANSIBLE_COLLECTIONS_PATH", "~/.ansible/collections"),
        "ANSIBLE_CALLBACKS_ENABLED": "orbis_events",
        "ANSIBLE_FORKS": "25",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_SYSTEM_WARNINGS": "False",
        "ORBIS_EVENTS_FILE": str(events_file),
    }


def render_result(event: dict[str, Any]) -> str:
    """One task result as a short, readable log entry."""
    result = event.get("result") or {}
    lines = [f"TASK [{event['task']}] {event['status']}"]
    for key in ("msg", "stdout", "stderr", "skip_reason"):
        value = result.get(key)
        if value not in (None, "", []):
            text = value if isinstance(value, str) else json.dumps(value)
            lines += ["  " + line for line in text.rstrip().splitlines()]
    for item in result.get("items", []):
        if item.get("msg"):
            lines.append(f"  - {item.get('item')}: {item['msg']}")
    return "\n".join(lines) + "\n"


async def run_level(
    workdir: Path,
    targets: list[Target],
    steps: list[StepRun],
    private_key_file: Path,
    *,
    label: str = "level",
    on_event: Callable[[dict[str, Any]], None] | None = None,
    timeout: float = 3600.0,
) -> tuple[dict[tuple[str, str], HostResult], str]:
    """Run the steps; return each (step, host)'s result and Ansible's whole output."""
    make_folder(workdir)  # shared with the recipes: no write or read through a planted link
    playbook = write_file(
        workdir, f"{label}.yml", yaml.safe_dump(build_playbook(steps), sort_keys=False)
    )
    inventory = write_file(
        workdir,
        f"{label}-inventory.yml",
        yaml.safe_dump(build_inventory(targets, steps, private_key_file), sort_keys=False),
    )
    events_file = write_file(workdir, f"{label}-events.jsonl", "")
    binary = Path(sys.executable).with_name("ansible-playbook")
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        "-i",
        str(inventory),
        str(playbook),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=ansible_env(workdir, events_file),
        cwd=str(workdir),
        preexec_fn=_die_with_parent,
    )
    events: list[dict[str, Any]] = []

    async def follow() -> None:
        offset = 0
        while True:
            with open_text(workdir, events_file.name) as fh:
                fh.seek(offset)
                chunk = fh.read()
            complete, _, _rest = chunk.rpartition("\n")
            if complete:
                offset += len(complete) + 1
                for line in complete.splitlines():
                    event = json.loads(line)
                    events.append(event)
                    if on_event is not None:
                        on_event(event)
            if proc.returncode is not None and not _rest:
                return
            await asyncio.sleep(0.2)

    follower = asyncio.create_task(follow())
    try:
        stdout, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        stdout = b"ansible-playbook timed out\n"
    except asyncio.CancelledError:
        # the deployment was cancelled (e.g. destroyed meanwhile): Ansible must not go on
        proc.kill()
        follower.cancel()
        raise
    await follower
    output = stdout.decode(errors="replace")
    return collect(steps, events, output, proc.returncode), output


def _die_with_parent() -> None:
    """In the child: be killed when the service dies, so that a restarted service never runs
    alongside an orphaned Ansible of its previous life (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def collect(
    steps: list[StepRun], events: list[dict[str, Any]], output: str, returncode: int | None
) -> dict[tuple[str, str], HostResult]:
    """Each (step, host)'s text and success, from the callback's events."""
    texts: dict[tuple[str, str], list[str]] = {}
    failed: set[tuple[str, str]] = set()
    for event in events:
        if event.get("kind") != "result":
            continue
        key = (event["step"], event["host"])
        texts.setdefault(key, []).append(render_result(event))
        if event["status"] in ("failed", "unreachable"):
            failed.add(key)
    results: dict[tuple[str, str], HostResult] = {}
    for step in steps:
        for host in step.hosts:
            key = (step.name, host)
            if key in texts:
                results[key] = HostResult(ok=key not in failed, output="".join(texts[key]))
            elif returncode == 0:
                results[key] = HostResult(ok=True, output="(nothing to do)\n")
            else:
                # Ansible stopped before this host ran anything: a syntax or inventory error.
                tail = "\n".join(output.strip().splitlines()[-15:])
                results[key] = HostResult(ok=False, output=f"Ansible did not run:\n{tail}\n")
    return results
