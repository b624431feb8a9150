"""Waiting for SSH: a port that refuses is tried again soon (sshd is about to listen), other
failures back off; a real SSH server that starts late is found within a fraction of a second."""

from __future__ import annotations

import asyncio
import socket
import time

import asyncssh

from orbis.configure.ssh import (
    MAX_INTERVAL,
    REFUSED_INTERVAL,
    KeptConnections,
    generate_key_pair,
    next_delay,
    run_command,
    wait_ssh,
)


def test_refused_is_retried_soon_and_the_rest_backs_off():
    assert next_delay(1.5, ConnectionRefusedError()) == REFUSED_INTERVAL
    assert next_delay(0.1, TimeoutError()) == 0.1 * 1.5
    assert next_delay(1.9, OSError("no route to host")) == MAX_INTERVAL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return True


async def test_a_late_sshd_is_found_soon_after_it_listens():
    private, _public = generate_key_pair()
    port = free_port()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    late = 3.4  # the old schedule (x1.5 from 0.1 s, no fast retry) tried at ~3.2 s, then ~4.9 s

    async def start_late() -> asyncssh.SSHAcceptor:
        await asyncio.sleep(late)
        return await asyncssh.create_server(Server, "127.0.0.1", port, server_host_keys=[host_key])

    starting = asyncio.create_task(start_late())
    t0 = time.monotonic()
    waited = await wait_ssh("127.0.0.1", user="root", private_key=private, port=port, timeout=20)
    listening = (await starting)
    try:
        assert time.monotonic() - t0 >= late
        # at most one refused interval after the port opened, plus the login (generous: load)
        assert waited < late + REFUSED_INTERVAL + 1.0, waited
    finally:
        listening.close()


class Counting(Server):
    """A server that counts the logins it accepted (each a key exchange on both sides)."""

    logins = 0

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        type(self).logins += 1


async def run_it(process: asyncssh.SSHServerProcess) -> None:
    process.stdout.write(f"ran {process.command}\n")
    process.exit(0)


async def counting_server() -> tuple[asyncssh.SSHAcceptor, int]:
    Counting.logins = 0
    port = free_port()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.create_server(Counting, "127.0.0.1", port, server_host_keys=[host_key],
                                          process_factory=run_it)  # fmt: skip
    return server, port


async def test_the_wait_connection_runs_the_next_command_without_a_second_login():
    private, _public = generate_key_pair()
    server, port = await counting_server()
    kept = KeptConnections()
    where = ("127.0.0.1", port, "root", None)
    try:
        await wait_ssh("127.0.0.1", user="root", private_key=private, port=port, timeout=20,
                       keep=kept.keeper(("infra", 1), where))  # fmt: skip
        assert len(kept) == 1
        status, output = await run_command("127.0.0.1", "hostname", user="root",
                                           private_key=private, port=port,
                                           kept=kept.take(("infra", 1), where))  # fmt: skip
        assert (status, output) == (0, "ran hostname\n")
        assert Counting.logins == 1  # one login for the wait and the command
        assert kept.take(("infra", 1), where) is None  # one command per kept connection
        # without a kept connection: a login of its own (what naming cost before)
        await run_command("127.0.0.1", "true", user="root", private_key=private, port=port)
        assert Counting.logins == 2
    finally:
        server.close()


async def test_a_kept_connection_to_elsewhere_closed_or_idle_is_not_used():
    private, _public = generate_key_pair()
    server, port = await counting_server()
    kept = KeptConnections(idle=0.3)
    where = ("127.0.0.1", port, "root", None)
    try:
        await wait_ssh("127.0.0.1", user="root", private_key=private, port=port, timeout=20,
                       keep=kept.keeper("a", where))  # fmt: skip
        # the node has a new address (restarted meanwhile): never sent to the old one
        assert kept.take("a", ("10.0.0.9", port, "root", None)) is None
        await wait_ssh("127.0.0.1", user="root", private_key=private, port=port, timeout=20,
                       keep=kept.keeper("b", where))  # fmt: skip
        conn = kept.take("b", where)
        assert conn is not None
        conn.close()  # closed meanwhile (by the node, say): the command logs in again
        await conn.wait_closed()
        status, output = await run_command("127.0.0.1", "id", user="root", private_key=private,
                                           port=port, kept=conn)  # fmt: skip
        assert (status, output) == (0, "ran id\n")
        assert Counting.logins == 3
        await wait_ssh("127.0.0.1", user="root", private_key=private, port=port, timeout=20,
                       keep=kept.keeper("c", where))  # fmt: skip
        await asyncio.sleep(0.6)  # not taken in time: closed
        assert len(kept) == 0
    finally:
        server.close()
