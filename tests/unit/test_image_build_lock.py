"""The image builds take one lock per ORBIS_HOME before looking for a cached image, so the
parallel workers of `make test` that all ask for the node and runner images at once build
them once (concurrent debootstraps into one package cache failed) and the others find them
cached. A stand-in `podman` first in PATH records what it is asked and says the image exists."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PODMAN = """#!/usr/bin/env bash
echo "podman $*" >>"$CALLS"
[[ $1 == image && $2 == inspect ]] && echo sha256:0123
exit 0
"""


@pytest.mark.parametrize("script", ["images/node/build.sh", "images/runner/build.sh"])
def test_a_second_build_waits_for_the_first_then_finds_the_image(tmp_path: Path,
                                                                  script: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "podman").write_text(PODMAN)
    (bin_dir / "podman").chmod(0o755)
    home, calls = tmp_path / "home", tmp_path / "calls"
    lock_name = ".build.lock" if "node" in script else ".runner-build.lock"
    (home / "build").mkdir(parents=True)
    env = dict(os.environ, ORBIS_HOME=str(home), CALLS=str(calls),
               PATH=f"{bin_dir}:{os.environ['PATH']}", ORBIS_RUNNER_ANSIBLE="2.19.14")
    with open(home / "build" / lock_name, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a first build under way
        second = subprocess.Popen([str(REPO / script)], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        assert second.poll() is None  # waiting for the lock
        assert not calls.exists() or "image exists orbis-" not in calls.read_text()
    out, err = second.communicate(timeout=30)  # the first is done: the lock is free
    assert second.returncode == 0, err
    assert "up to date (cached)" in err
    assert out.strip().startswith(("orbis-node:", "orbis-runner:"))
