"""A throw-away Orbis server in a subprocess: own home folder, own port, own user."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class RunningServer:
    url: str
    home: Path
    auth_file: Path
    env: dict[str, str]  # environment for `orbis` CLI calls against this server

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orbis.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def orbis_server(docker_host: str | None = None, user: str = "tester") -> Iterator[RunningServer]:
    """Start `orbis server` on a free loopback port; stop it and keep nothing afterwards."""
    with tempfile.TemporaryDirectory(prefix="orbis-test-") as tmp:
        home = Path(tmp)
        port = free_port()
        auth = home / "auth.dat"
        auth.write_text(
            f"id = im; type = InfrastructureManager; username = {user}; password = pw-{user}\n"
        )
        env = {
            **os.environ,
            "ORBIS_HOME": str(home),
            "ORBIS_PORT": str(port),
            "ORBIS_URL": f"http://127.0.0.1:{port}",
            "ORBIS_AUTH": str(auth),
        }
        if docker_host:
            env["DOCKER_HOST"] = docker_host
        log = (home / "server.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "orbis.cli.main", "server"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{url}/version", timeout=1)
                    break
                except httpx.HTTPError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            "orbis server did not start:\n" + (home / "server.log").read_text()
                        ) from None
                    time.sleep(0.1)
            yield RunningServer(url=url, home=home, auth_file=auth, env=env)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
