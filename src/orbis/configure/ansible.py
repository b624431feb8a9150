"""Running Ansible playbooks against the nodes, over SSH, from the infrastructure's runner
(orbis/runner: a container, never the service's own process).

One `ansible-playbook` process runs per configuration level, holding every step of that level
(Ansible's start-up costs more than a small play, so one process per level instead of one per
node). A callback plugin writes each task result as a JSON line, from which each node gets its
own output per step, live.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import stat
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import yaml

from orbis.configure import workfiles
from orbis.lang.errors import TemplateError
from orbis.lang.limits import safe_load_bounded
from orbis.runner.quota import run_within_quota

if TYPE_CHECKING:
    from orbis.runner.base import Runner, RunnerPaths

CALLBACK_DIR = Path(__file__).with_name("callback_plugins")
ROLES_DIR = Path(__file__).with_name("roles")  # roles shipped with Orbis (catalogue templates)
EVENTS_LIMIT = 64 << 20  # bytes of a level's events file read at most
PLAY_KEYS = {"hosts", "tasks", "roles", "pre_tasks", "post_tasks", "handlers", "import_playbook"}
# Mitogen's strategy for levels with at least this many hosts (ORBIS_MITOGEN_MIN_HOSTS; "off"
# never): one Python per node instead of one per task, less than half the nodes' CPU on 20
# nodes; small levels keep Ansible's own strategy (Mitogen's start costs more than it saves).
MITOGEN_MIN_HOSTS = 8
FORKS_MIN, FORKS_MAX = 5, 50
WARM_WAIT = 1800.0  # seconds a playbook started ahead waits for its level before it gives up

# An ansible-playbook started ahead (WarmPlaybook): Ansible's start (imports and settings, about
# half a second of CPU, most of what a small level costs beyond its tasks) happens while the
# nodes launch or the previous level runs. It writes its pid to `ready` once started, waits for
# `go` (a JSON list of ansible-playbook's arguments; anything else: exit unrun), then runs them
# as ansible-playbook would, in this same process.
WARM_SCRIPT = """
import json, os, sys, time
import ansible.cli.playbook, ansible.executor.playbook_executor, ansible.inventory.manager
import ansible.vars.manager, ansible.executor.task_queue_manager
go, ready, wait = sys.argv[1], sys.argv[2], float(sys.argv[3])
fd = os.open(ready, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
os.write(fd, str(os.getpid()).encode()); os.close(fd)
end = time.monotonic() + wait
while not os.path.exists(go):
    if time.monotonic() > end:
        sys.exit(0)
    time.sleep(0.02)
try:
    with open(go) as f:
        args = json.load(f)
except (OSError, ValueError):
    args = None
if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
    sys.exit(0)
print(f"(started ahead, pid {os.getpid()})", flush=True)
sys.argv = ["ansible-playbook", *args]
sys.exit(ansible.cli.playbook.main())
"""


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
    # reached over a bridge of this host (the local back-end): no quantum-safe key exchange
    on_this_host: bool = False


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
    try:  # a user's text: alias expansion, depth, values and size bounded (lang/limits.py)
        data = safe_load_bounded(text, origin)
    except yaml.YAMLError as exc:
        raise PlaybookError(f"{origin}: not valid YAML: {exc}") from exc
    except TemplateError as exc:  # LimitError: the message names the setting
        raise PlaybookError(f"{origin}: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise PlaybookError(f"{origin}: a playbook is a list of plays (or of tasks)")
    if any(PLAY_KEYS & item.keys() for item in data):
        return data
    return [{"name": origin, "tasks": data}]


def check_variables(variables: dict[str, Any], origin: str) -> None:
    """Refuse operation inputs that would choose how Ansible reaches or runs on the nodes.

    Inputs become play variables, and Ansible reads its connection settings from variables:
    `ansible_ssh_common_args: -o ProxyCommand=...` runs a command on the controller,
    `ansible_connection: local` or `ansible_host` points a node's tasks elsewhere. Every
    `ansible_*` name is Orbis' to set (new connection plugins bring new ones, so no list), and
    so is every `mitogen_*` one: the Mitogen strategy reads `mitogen_via` (another route to
    the node), `mitogen_kind` and friends from host variables the same way.
    Refused rather than dropped: the step fails saying why, instead of running otherwise
    than its author expects."""
    for name in variables:
        if str(name).lower().startswith(("ansible_", "mitogen_")):
            raise PlaybookError(
                f"{origin}: input '{name}' is refused: ansible_* and mitogen_* variables "
                "(connection, user, port, SSH arguments, interpreter, route) are set by Orbis, "
                "not by operation inputs"
            )


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


# The key exchange for nodes on this host. OpenSSH 9's default, sntrup761x25519 (post-quantum
# hybrid: resists a quantum adversary recording the traffic today), costs the client ~65 ms of
# CPU per connection against ~5 ms for curve25519 (measured in the runner: 0.07 against 0.005 s
# user; the node's sshd 42 against 33 ms); Mitogen opens one per node, so a 20-node level paid
# ~1.3 s of CPU for it. Traffic over a bridge of this host never crosses a network that could
# be recorded; nodes anywhere else keep OpenSSH's default.
LOCAL_KEX = "KexAlgorithms=curve25519-sha256,curve25519-sha256@libssh.org"


def jump_args(jump: str, private_key_file: PurePath, on_this_host: bool = False) -> str:
    """ssh options that reach a private node through `jump` ("user@host:port"). A ProxyCommand
    rather than ProxyJump: the jump login must use the infrastructure's key too, and ProxyJump
    would only offer the user's default keys. Every value is quoted: the user name comes from
    the template, and ssh runs the ProxyCommand with a shell."""
    login, _, port = jump.rpartition(":")
    if not port.isdigit() or not login:
        raise PlaybookError(f"jump host {jump!r} is not user@host:port")
    kex = ["-o", LOCAL_KEX] if on_this_host else []
    proxy = shlex.join(["ssh", "-W", "%h:%p", "-q", "-i", str(private_key_file), "-p", port,
                        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                        *kex, "--", login])  # fmt: skip
    # Ansible splits ansible_ssh_common_args with shlex: one quoted word, one option
    return "-o " + shlex.quote(f"ProxyCommand={proxy}")


def build_inventory(
    targets: list[Target], steps: list[StepRun], private_key_file: PurePath,
    scripts_dir: PurePath | None = None,
) -> dict[str, Any]:  # fmt: skip
    hostvars = {
        t.host: {
            **t.variables,
            "ansible_host": t.address,
            "ansible_user": t.user,
            "ansible_port": t.port,
            "ansible_ssh_private_key_file": str(private_key_file),
            **({"ansible_ssh_common_args": jump_args(t.jump, private_key_file, t.on_this_host)}
               if t.jump else {}),  # fmt: skip
            **({"ansible_ssh_extra_args": f"-o {LOCAL_KEX}"} if t.on_this_host else {}),
        }
        for t in targets
    }
    children: dict[str, Any] = {}
    for t in targets:
        for group in t.groups:
            children.setdefault(group, {"hosts": {}})["hosts"][t.host] = None
    for index, step in enumerate(steps):
        children[f"orbis_step_{index}"] = {"hosts": dict.fromkeys(step.hosts)}
    shared = {"orbis_scripts_dir": str(scripts_dir)} if scripts_dir else {}
    return {"all": {"hosts": hostvars, "children": children, "vars": shared}}


def mitogen_min_hosts() -> int | None:
    """Hosts from which a level runs with Mitogen (ORBIS_MITOGEN_MIN_HOSTS); None: never."""
    value = os.environ.get("ORBIS_MITOGEN_MIN_HOSTS", "").strip().lower()
    if value in ("off", "never", "no", "false"):
        return None
    return int(value) if value.isdigit() else MITOGEN_MIN_HOSTS


def strategy(hosts: int, mitogen: str | None) -> dict[str, str]:
    """How many forks and which strategy a level of `hosts` hosts runs with. `mitogen` is the
    folder of Mitogen's strategy plugins in the runner (None where it has none)."""
    env = {"ANSIBLE_FORKS": str(min(max(hosts, FORKS_MIN), FORKS_MAX))}
    threshold = mitogen_min_hosts()
    if mitogen and threshold is not None and hosts >= threshold:
        env |= {"ANSIBLE_STRATEGY_PLUGINS": mitogen, "ANSIBLE_STRATEGY": "mitogen_linear"}
    return env


def ansible_env(paths: RunnerPaths, events_file: PurePath, hosts: int = 1,
                mitogen: str | None = None) -> dict[str, str]:  # fmt: skip
    """Ansible's whole environment, made from nothing: no variable of the service's (its
    secret key, cloud credentials) reaches a play. SSH state lives in the runner's HOME."""
    return {
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s "
        f"-o UserKnownHostsFile={paths.home}/.ssh/known_hosts -o StrictHostKeyChecking=no "
        "-o LogLevel=ERROR",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": f"{paths.home}/.cp",
        "ANSIBLE_CALLBACK_PLUGINS": str(paths.callback_dir),
        "ANSIBLE_ROLES_PATH": f"{paths.workspace / 'roles'}:{paths.roles_dir}",
        "ANSIBLE_COLLECTIONS_PATH": str(paths.workspace / "collections"),
        "ANSIBLE_CALLBACKS_ENABLED": "orbis_events",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCAL_TEMP": f"{paths.tmp}/ansible-local",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_SYSTEM_WARNINGS": "False",
        # SSH connect timeout: many nodes at once on a loaded host answer slower than 10 s
        "ANSIBLE_TIMEOUT": "30",
        **strategy(hosts, mitogen),
        "ORBIS_EVENTS_FILE": str(events_file),
    }


class WarmPlaybook:
    """An ansible-playbook started ahead in a runner for a level of `hosts` hosts: its label
    (file names) is fixed now, and its environment, which Ansible reads as it starts, must be
    the one the level computes when it runs (else the level discards it and starts afresh).
    Only in runners whose folder the service shares live (`Runner.shares_folder`)."""

    def __init__(self, runner: Runner, hosts: int, label: str,
                 timeout: float = 3600.0) -> None:  # fmt: skip
        self.runner = runner
        self.label = label
        self.hosts = hosts
        paths = runner.paths
        self.env = ansible_env(paths, paths.workspace / f"{label}-events.jsonl", hosts,
                               runner.mitogen)  # fmt: skip
        self._go = runner.workspace / f"{label}.go"
        argv = ["python3", "-c", WARM_SCRIPT, str(paths.workspace / f"{label}.go"),
                str(paths.workspace / f"{label}.ready"), str(WARM_WAIT)]  # fmt: skip
        self.task: asyncio.Task[tuple[int, str]] = asyncio.create_task(
            runner.run(argv, self.env, timeout=timeout, tag=f"{label}-warm"))
        self.task.add_done_callback(lambda t: t.cancelled() or t.exception())  # seen or dropped
        self._sent = False

    def usable(self, runner: Runner, env: dict[str, str]) -> bool:
        """Whether this process can run a level of `runner` with `env`: the same settings
        except the forks (given on its command line instead)."""
        same = {k: v for k, v in env.items() if k != "ANSIBLE_FORKS"} == {
            k: v for k, v in self.env.items() if k != "ANSIBLE_FORKS"}
        return same and runner is self.runner and not self._sent and not self.task.done()

    def go(self, args: list[str] | None) -> asyncio.Task[tuple[int, str]]:
        """Hand the process its arguments (None: exit unrun). The file is written whole under
        another name and renamed (workfiles), so the process never reads half of it."""
        self._sent = True
        # replaces whatever a play may have left there, never follows it
        workfiles.write_file(self._go.parent, self._go.name, json.dumps(args))
        return self.task

    def discard(self) -> None:
        """Not used: let the process end unrun (a runner's removal ends it too)."""
        if not self._sent and not self.task.done():
            with suppress(OSError):  # the folder is gone: so is the runner
                self.go(None)


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
    runner: Runner,
    targets: list[Target],
    steps: list[StepRun],
    *,
    label: str = "level",
    on_event: Callable[[dict[str, Any]], None] | None = None,
    timeout: float = 3600.0,
    warm: WarmPlaybook | None = None,
) -> tuple[dict[tuple[str, str], HostResult], str]:
    """Run the steps in `runner`; return each (step, host)'s result and Ansible's output.
    `warm`: an ansible-playbook started ahead for this level; it runs the level if its
    settings are the level's (its label is then the level's), else it is let go."""
    folder, paths = runner.workspace, runner.paths
    if warm is not None and not warm.usable(runner, ansible_env(
            paths, paths.workspace / f"{warm.label}-events.jsonl", len(targets),
            runner.mitogen)):  # fmt: skip
        warm.discard()
        warm = None
    if warm is not None:
        label = warm.label
    write_new(folder / f"{label}.yml", yaml.safe_dump(build_playbook(steps), sort_keys=False))
    inventory = build_inventory(targets, steps, paths.key_file, paths.scripts_dir)
    write_new(folder / f"{label}-inventory.yml", yaml.safe_dump(inventory, sort_keys=False))
    events_file = folder / f"{label}-events.jsonl"
    write_new(events_file, "")
    args = ["-i", f"{label}-inventory.yml", f"{label}.yml"]
    env = ansible_env(paths, paths.workspace / events_file.name, len(targets), runner.mitogen)
    started = None
    if warm is not None:  # the forks on the command line: the process read its env already
        started = warm.go(["--forks", env["ANSIBLE_FORKS"], *args])
    run = asyncio.create_task(run_within_quota(runner, ["ansible-playbook", *args], env,
                                               timeout=timeout, tag=label, started=started))
    events: list[dict[str, Any]] = []
    offset = 0
    try:
        while True:
            finished = run.done()
            chunk, offset = read_new(events_file, offset)
            for line in chunk.splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # the file is in the runner's reach: never trust its lines
                if isinstance(event, dict):
                    events.append(event)
                    if on_event is not None:
                        on_event(event)
            if finished:
                break
            await asyncio.wait({run}, timeout=0.2)
    except asyncio.CancelledError:
        run.cancel()  # the deployment was cancelled (e.g. destroyed meanwhile)
        raise
    returncode, output, over_quota = run.result()
    how = f"strategy {env.get('ANSIBLE_STRATEGY', 'linear')}, {env['ANSIBLE_FORKS']} forks"
    output = f"({how})\n{output}"
    results = collect(steps, events, output, returncode)
    if over_quota is not None:  # stopped mid-play: no host finished its steps
        results = {key: HostResult(ok=False, output=f"{r.output}{over_quota}\n")
                   for key, r in results.items()}  # fmt: skip
    return results, output


def write_new(path: Path, text: str) -> None:
    """Create `path` with `text`; never through a link or over a file a play left there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def read_new(path: Path, offset: int) -> tuple[str, int]:
    """The complete lines of `path` after `offset` (up to EVENTS_LIMIT bytes in all), and the
    new offset. Not through a link, nor from anything but a plain file: a play may have
    replaced it (with a link to a host file, a FIFO, /dev/zero)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return "", offset
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or offset >= EVENTS_LIMIT:
            return "", offset
        fh.seek(offset)
        data = fh.read(EVENTS_LIMIT - offset)
    complete, newline, _rest = data.rpartition(b"\n")
    if not newline:
        return "", offset
    return complete.decode(errors="replace"), offset + len(complete) + 1


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
