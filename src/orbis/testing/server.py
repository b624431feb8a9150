"""A throw-away Orbis server in a subprocess: own home folder, own port, own user."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from orbis.auth import parse_auth_data, to_header


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningServer:
    """`orbis server` with its own home; `kill()` and `start()` simulate a crash and restart."""

    def __init__(
        self, home: Path, docker_host: str | None, user: str,
        env: dict[str, str] | None = None, args: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        self.home = home
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.auth_file = home / "auth.dat"
        self.auth_file.write_text(
            f"id = im; type = InfrastructureManager; username = {user}; password = pw-{user}\n"
        )
        self.env = {
            **os.environ,
            "ORBIS_HOME": str(home),
            "ORBIS_PORT": str(port),
            "ORBIS_URL": self.url,
            "ORBIS_AUTH": str(self.auth_file),
        }
        if docker_host:
            self.env["DOCKER_HOST"] = docker_host
        self.env.update(env or {})  # e.g. a shared ORBIS_DB_URL and ORBIS_SECRET_KEY
        self.args = args  # extra `orbis server` options, e.g. ("--workers", "2")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> None:
        # readiness is the answer of /version; the cap only catches a server that hangs (a
        # loaded 2-core CI machine has taken more than 30 s to import and migrate)
        log = (self.home / "server.log").open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orbis.cli.main", "server", *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(f"{self.url}/version", timeout=1)
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "orbis server did not start:\n" + (self.home / "server.log").read_text()
                    ) from None
                time.sleep(0.1)

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orbis.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def client(self) -> httpx.Client:
        header = to_header(parse_auth_data(self.auth_file.read_text()))  # lines as IM's header
        return httpx.Client(base_url=self.url, headers={"Authorization": header}, timeout=600)

    def destroy_all(self) -> None:
        """Destroy (with force) whatever this server still holds, e.g. after a failed test."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            with self.client() as client:
                for uri in client.get("/infrastructures").text.split():
                    client.delete(f"/infrastructures/{uri.rsplit('/', 1)[-1]}",
                                  params={"force": "yes"})  # fmt: skip
        except httpx.HTTPError:
            pass  # best effort: the test's own assertions say what went wrong


@contextmanager
def orbis_server(docker_host: str | None = None, user: str = "tester",
                 env: dict[str, str] | None = None) -> Iterator[RunningServer]:  # fmt: skip
    """Start `orbis server` on a free loopback port (with `env` added to its environment);
    afterwards destroy what it still holds, stop it, and keep nothing."""
    with tempfile.TemporaryDirectory(prefix="orbis-test-") as tmp:
        server = RunningServer(Path(tmp), docker_host, user, env)
        server.start()
        try:
            yield server
        finally:
            server.destroy_all()
            server.stop()
