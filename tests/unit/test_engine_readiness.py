"""scripts/engine.sh start: the service is ready when it answers /_ping on its socket, within
the deadline; its pid only tells that it died. What the process's /proc cmdline says is not
readiness: right after the fork it is still bash, not yet podman (issue 12 §1, where a first
run printed "podman service exited" while podman was starting).

A stand-in `podman` first in PATH plays the service: it comes up slowly under a process name
without "podman" in it, then answers /_ping (or dies, or never answers). The real podman is
started from nothing ten times under CPU load by scripts/check-engine-start.sh
(tests/e2e/test_engine_start.py)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# A stand-in for `podman system service --time=0 unix://SOCKET`: re-executes itself as a process
# whose cmdline has no "podman" (the socket goes through the environment), waits, then answers.
STAND_IN = """#!/usr/bin/env bash
export STAND_IN_SOCKET="${@: -1}"
exec -a engine-stand-in python3 -c "$STAND_IN_CODE"
"""
CODE = r"""
import os, socket, sys, time
mode = os.environ["STAND_IN_MODE"]
time.sleep(float(os.environ.get("STAND_IN_DELAY", "1")))
if mode == "dies":
    print("stand-in: cannot open the storage", file=sys.stderr)
    sys.exit(1)
server = socket.socket(socket.AF_UNIX)
server.bind(os.environ["STAND_IN_SOCKET"].removeprefix("unix://"))
server.listen()
while True:
    conn, _ = server.accept()
    conn.recv(4096)
    if mode == "answers":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")
    conn.close()
"""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    if Path("/var/run/docker.sock").is_socket():
        pytest.skip("a Docker socket exists: engine.sh would prefer that daemon")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "podman").write_text(STAND_IN)
    (bin_dir / "podman").chmod(0o755)
    orbis_home = tmp_path / "home"
    yield orbis_home
    pid_file = orbis_home / "run" / "podman.pid"
    if pid_file.exists():  # the stand-in runs in its own session: end it by its pid
        with suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _start(home: Path, mode: str, wait: int = 20) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{home.parent / 'bin'}:{env['PATH']}",
        ORBIS_HOME=str(home),
        ORBIS_ENGINE_WAIT=str(wait),
        STAND_IN_MODE=mode,
        STAND_IN_CODE=CODE,
    )
    return subprocess.run([str(REPO / "scripts/engine.sh"), "start"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_a_service_slow_to_answer_is_waited_for(home: Path) -> None:
    done = _start(home, "answers")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"unix://{home}/run/podman.sock"
    assert "exited" not in done.stderr


def test_a_service_that_dies_fails_at_once_with_its_log(home: Path) -> None:
    done = _start(home, "dies", wait=30)
    assert done.returncode == 1
    assert "exited without answering" in done.stderr
    assert "stand-in: cannot open the storage" in done.stderr  # the log is shown
    assert not (home / "run" / "podman.pid").exists()


def test_a_service_that_never_answers_fails_at_the_deadline_with_its_log(home: Path) -> None:
    (home / "run").mkdir(parents=True)
    (home / "run" / "podman.log").write_text("stand-in: listening, but not answering\n")
    done = _start(home, "silent", wait=3)
    assert done.returncode == 1
    assert "did not answer" in done.stderr and "within 3s (ORBIS_ENGINE_WAIT)" in done.stderr
    assert "stand-in: listening, but not answering" in done.stderr
