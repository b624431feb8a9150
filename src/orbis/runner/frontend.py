"""An infrastructure's runner on its own front-end node, for a server without a container
engine (a cloud-only server): the plays run there, as IM's contextualization agent runs them
on the infrastructure's master VM. The node is the user's own, so what a play does there stays
with the user's resources, never the service host.

Each command travels in two SSH sessions: the runner folder's files go up as a tar, then the
command runs under `timeout` with an environment made from nothing; Ansible's event files come
back as a tar, read without following links. Orbis' callback plugin, roles, disk script and the
infrastructure's key go up once, and ansible-core is installed from the node's own package
mirror if the node lacks it.
"""

from __future__ import annotations

import asyncio
import io
import shlex
import tarfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import asyncssh

from orbis.configure import workfiles
from orbis.configure.ansible import CALLBACK_DIR, ROLES_DIR
from orbis.configure.ssh import connect
from orbis.configure.storage import SCRIPT as DISKS_SCRIPT
from orbis.runner.base import OUTPUT_LIMIT, Runner, RunnerError, RunnerPaths

BASE = "/var/tmp/orbis-runner"  # per infrastructure below it; 0700, the login user's
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SETUP_TIMEOUT = 900.0  # installing ansible-core from the node's mirror
INSTALL = (
    "command -v ansible-playbook >/dev/null || { S=; [ \"$(id -u)\" = 0 ] || S='sudo -n'; "
    "$S env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
    "ansible-core >/dev/null 2>&1 || { $S apt-get update -q >/dev/null && "
    "$S env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
    "ansible-core >/dev/null; }; }"
)


@dataclass(frozen=True)
class FrontLogin:
    """How the service logs in to the node the plays run on."""

    address: str
    port: int
    user: str
    site: str | None  # nodes of this site are reached at their private addresses from it


class FrontendRunner(Runner):
    where = "the infrastructure's front-end node"
    on_service_host = False  # the user's own machine: its network position is the user's

    def __init__(self, workspace: Path, login: FrontLogin, private_key: str,
                 infra_id: str) -> None:  # fmt: skip
        self.workspace = workspace
        self.login = login
        self._key = asyncssh.import_private_key(private_key)
        self._private_key = private_key
        base = PurePosixPath(f"{BASE}-{infra_id}")
        self.base = base
        self.paths = RunnerPaths(
            workspace=base / "work", key_file=base / "key" / "id_ed25519",
            callback_dir=base / "callback_plugins", roles_dir=base / "roles",
            scripts_dir=base / "scripts", home=base / "home", tmp=base / "tmp",
        )  # fmt: skip
        self._ready = False

    async def _ssh(self, command: str, stdin: bytes | None, timeout: float) -> tuple[int, bytes]:
        options = {"username": self.login.user, "client_keys": [self._key],
                   "known_hosts": None, "connect_timeout": 30, "login_timeout": 30}  # fmt: skip
        try:
            async with connect(self.login.address, self.login.port, options, None) as conn:
                done = await asyncio.wait_for(
                    conn.run(command, input=stdin, encoding=None, check=False), timeout
                )
        except (OSError, asyncssh.Error) as exc:
            raise RunnerError(f"front-end {self.login.address}: {exc}") from None
        out = _bytes(done.stdout) + _bytes(done.stderr)
        return (done.exit_status if done.exit_status is not None else 255), out[-OUTPUT_LIMIT:]

    async def _prepare(self) -> None:
        """Orbis' files and the key on the node, and ansible-core there."""
        upload = _tar(
            {
                "callback_plugins": CALLBACK_DIR,
                "roles": ROLES_DIR,
                f"scripts/{DISKS_SCRIPT.name}": DISKS_SCRIPT,
            },  # fmt: skip
            {"key/id_ed25519": self._private_key.encode()},
        )
        base = shlex.quote(str(self.base))
        script = (f"set -e; umask 077; rm -rf {base}; mkdir -p {base}/work {base}/home "
                  f"{base}/tmp; tar -C {base} -xf -; {INSTALL}")  # fmt: skip
        code, out = await self._ssh(script, upload, SETUP_TIMEOUT)
        if code != 0:
            tail = out.decode(errors="replace").strip()[-500:]
            raise RunnerError(f"front-end {self.login.address}: cannot prepare the runner "
                              f"(ansible-core from the node's package mirror): {tail}")  # fmt: skip
        self._ready = True

    async def run(self, argv: list[str], env: dict[str, str], *, timeout: float,
                  tag: str) -> tuple[int, str]:  # fmt: skip
        if not self._ready:
            await self._prepare()
        work = shlex.quote(str(self.paths.workspace))
        code, out = await self._ssh(f"tar -C {work} -xf -", _tar_folder(self.workspace), 120)
        if code != 0:
            raise RunnerError(f"front-end {self.login.address}: cannot send the playbooks: "
                              f"{out.decode(errors='replace')[-300:]}")  # fmt: skip
        full_env = {"PATH": PATH, "HOME": str(self.paths.home), "LANG": "C.UTF-8", **env}
        assigned = " ".join(shlex.quote(f"{k}={v}") for k, v in full_env.items())
        command = (f"cd {work} && timeout -k 10 {int(timeout)} env -i {assigned} "
                   f"{shlex.join(argv)} 2>&1")  # fmt: skip
        code, out = await self._ssh(command, None, timeout + 30)
        await self._fetch_events()
        return code, out.decode(errors="replace")

    async def _fetch_events(self) -> None:
        """Ansible's event files back into the local folder (plain files only)."""
        work = shlex.quote(str(self.paths.workspace))
        code, out = await self._ssh(
            f"cd {work} && tar -cf - --no-recursion $(ls *-events.jsonl 2>/dev/null)", None, 120
        )
        if code != 0:
            return
        with tarfile.open(fileobj=io.BytesIO(out), mode="r:") as archive:
            for member in archive.getmembers():
                if (
                    not member.isfile()
                    or "/" in member.name
                    or not member.name.endswith("-events.jsonl")
                ):
                    continue  # only plain event files of this folder come back
                data = archive.extractfile(member)
                if data is not None:
                    workfiles.write_file(self.workspace, member.name, data.read(), 0o600)

    async def close(self) -> None:
        """Remove the runner's files (the key among them) from the node."""
        if self._ready:
            self._ready = False
            with suppress(RunnerError):  # the node may be gone already (destroyed)
                await self._ssh(f"rm -rf {shlex.quote(str(self.base))}", None, 60)


def _tar(folders: dict[str, Path], files: dict[str, bytes]) -> bytes:
    """A tar of Orbis' own folders/files (named as given) and of in-memory files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, path in folders.items():
            archive.add(str(path), arcname=name, filter=_no_caches)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _tar_folder(folder: Path) -> bytes:
    """The runner folder's plain files (links and other kinds are left out)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                archive.add(str(path), arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def _bytes(value: bytes | str | None) -> bytes:
    return value.encode() if isinstance(value, str) else (value or b"")


def _no_caches(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in info.name or info.issym() or info.islnk() else info
