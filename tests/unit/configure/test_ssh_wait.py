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
    generate_key_pair,
    next_delay,
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
