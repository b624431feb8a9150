"""Waiting for a node's SSH service to accept our key, and running one command there."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Any

import asyncssh


class SSHNotReady(Exception):
    """The node did not accept an SSH login in time; the message says what last failed."""


REFUSED_INTERVAL = 0.2  # seconds between tries while the port refuses (sshd not up yet)
MAX_INTERVAL = 2.0  # ... and at most, for other failures (the machine not answering at all)


def next_delay(delay: float, error: BaseException) -> float:
    """The wait before the next try. A refused connection costs nothing and says the machine
    is up and sshd about to be: try again soon, or the wait adds up to 2 s to every node's
    readiness (most of the SSH phase of a 20-node local deployment). Other failures (timeouts,
    no route, a login refused) back off by half each time up to MAX_INTERVAL."""
    if isinstance(error, ConnectionRefusedError):
        return REFUSED_INTERVAL
    return min(delay * 1.5, MAX_INTERVAL)


async def wait_ssh(
    host: str,
    *,
    user: str,
    private_key: str,
    port: int = 22,
    timeout: float = 120.0,
    interval: float = 0.1,
    jump: str | None = None,
    keep: Callable[[asyncssh.SSHClientConnection], None] | None = None,
) -> float:
    """Return the seconds it took until a login with `private_key` succeeded.

    Retries quickly at first: a fresh container answers within a fraction of a second, a cloud
    VM within minutes, and every retry is cheap. `jump` ("user@host:port") is a node with a
    public address that this one is reached through (SSH tunnel), like Ansible will.
    `keep`: given the connection that succeeded instead of closing it (a direct one only; one
    through a jump host is closed), for the node's next command (KeptConnections).
    """
    key = asyncssh.import_private_key(private_key)
    start = time.monotonic()
    last_error = "no attempt made"
    delay = interval
    options = {
        "username": user,
        "client_keys": [key],
        "known_hosts": None,  # new machines have unknown host keys by nature
        "connect_timeout": min(10.0, timeout),
        "login_timeout": min(10.0, timeout),
    }
    while time.monotonic() - start < timeout:
        try:
            if keep is not None and not jump:
                keep(await asyncssh.connect(host, port=port, **options))
                return time.monotonic() - start
            async with connect(host, port, options, jump):
                return time.monotonic() - start
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            last_error = str(exc) or exc.__class__.__name__
            error: BaseException = exc
        await asyncio.sleep(delay)
        delay = next_delay(delay, error)
    via = f" through {jump}" if jump else ""
    raise SSHNotReady(
        f"SSH on {host}:{port}{via} not ready after {timeout:.0f} s: {last_error}"
    )


@asynccontextmanager
async def connect(host: str, port: int, options: dict[str, Any], jump: str | None
                   ) -> AsyncIterator[asyncssh.SSHClientConnection]:  # fmt: skip
    if not jump:
        async with asyncssh.connect(host, port=port, **options) as conn:
            yield conn
        return
    login, _, jump_port = jump.rpartition(":")
    jump_user, _, jump_host = login.rpartition("@")
    async with asyncssh.connect(
        jump_host, port=int(jump_port), **{**options, "username": jump_user}
    ) as tunnel, asyncssh.connect(host, port=port, tunnel=tunnel, **options) as conn:
        yield conn


async def run_command(
    host: str, command: str, *, user: str, private_key: str, port: int = 22,
    jump: str | None = None, timeout: float = 30.0, stdin: str | None = None,
    kept: asyncssh.SSHClientConnection | None = None,
) -> tuple[int, str]:  # fmt: skip
    """Run one shell command on a node (as `user`); (exit status, output). Raises OSError or
    asyncssh.Error when the node cannot be reached. `kept`: a connection to that node already
    open (KeptConnections.take), used and then closed; if it can no longer open a session (the
    node closed it meanwhile: the command has not started), a new connection is made."""
    if kept is not None:
        try:
            session = await kept.create_process(command, input=stdin)
        except (OSError, asyncssh.Error):
            kept.close()  # gone meanwhile: log in again below
        else:
            try:
                done = await asyncio.wait_for(session.wait(check=False), timeout)
            finally:
                kept.close()
            return _result(done)
    key = asyncssh.import_private_key(private_key)
    options = {"username": user, "client_keys": [key], "known_hosts": None,
               "connect_timeout": timeout, "login_timeout": timeout}  # fmt: skip
    async with connect(host, port, options, jump) as conn:
        done = await asyncio.wait_for(conn.run(command, input=stdin, check=False), timeout)
    return _result(done)


def _result(done: asyncssh.SSHCompletedProcess) -> tuple[int, str]:
    output = "".join(str(part) for part in (done.stdout or "", done.stderr or ""))
    return (done.exit_status if done.exit_status is not None else 255), output


class KeptConnections:
    """SSH connections the readiness wait opened (wait_ssh's `keep`), kept for the node's next
    command: naming the nodes right after (configure/hosts.py) then costs no second login, a
    key exchange that took ~40 ms of the node's CPU and about as much of the service's, per
    node. Each is kept for one command, for the place it was opened to (host, port, user), and
    closed if not taken within `idle` seconds."""

    def __init__(self, idle: float = 120.0) -> None:
        self.idle = idle
        self._kept: dict[Hashable, tuple[Hashable, asyncssh.SSHClientConnection,
                                         asyncio.TimerHandle]] = {}  # fmt: skip

    def keeper(self, key: Hashable, where: Hashable
               ) -> Callable[[asyncssh.SSHClientConnection], None]:  # fmt: skip
        """What wait_ssh calls with the connection it made for `key` to `where`."""

        def keep(conn: asyncssh.SSHClientConnection) -> None:
            self.drop(key)
            timer = asyncio.get_running_loop().call_later(self.idle, self.drop, key)
            self._kept[key] = (where, conn, timer)

        return keep

    def take(self, key: Hashable, where: Hashable) -> asyncssh.SSHClientConnection | None:
        """The connection kept for `key` if it was opened to `where` (the caller closes it)."""
        entry = self._kept.pop(key, None)
        if entry is None:
            return None
        kept_where, conn, timer = entry
        timer.cancel()
        if kept_where != where:
            conn.close()
            return None
        return conn

    def drop(self, key: Hashable) -> None:
        entry = self._kept.pop(key, None)
        if entry is not None:
            entry[2].cancel()
            entry[1].close()

    def drop_all(self, match: Callable[[Hashable], bool]) -> None:
        for key in [k for k in self._kept if match(k)]:
            self.drop(key)

    def __len__(self) -> int:
        return len(self._kept)


def generate_key_pair() -> tuple[str, str]:
    """A new (private key in OpenSSH PEM, public key line) pair for one infrastructure."""
    key = asyncssh.generate_private_key("ssh-ed25519", comment="orbis")
    private = key.export_private_key().decode()
    public = key.export_public_key().decode().strip()
    return private, public
