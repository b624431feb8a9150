"""The podman service starts from nothing every time on a loaded machine (issue 12 §1): ten
rounds of stop, remove the socket, start, while two busy loops load the CPUs, through
scripts/check-engine-start.sh. The check runs its OWN podman service on a socket under a
temporary ORBIS_CHECK_HOME; the engine the other tests use is not touched. About 20 s here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]


def test_the_engine_starts_from_nothing_ten_times_under_load(tmp_path: Path) -> None:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: nothing for engine.sh to start")
    env = dict(os.environ, ORBIS_CHECK_HOME=str(tmp_path / "check"))
    done = subprocess.run([str(REPO / "scripts/check-engine-start.sh"), "10"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    if "a Docker daemon answers" in done.stdout:
        pytest.skip("a Docker daemon answers: engine.sh uses it and starts no podman service")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10/10 rounds passed" in done.stdout, done.stdout
    assert not (tmp_path / "check" / "run" / "podman.sock").exists()  # stopped at the end
