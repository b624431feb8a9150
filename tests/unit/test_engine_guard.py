"""scripts/engine.sh start installs the link-local guard (scripts/linklocal-guard.nft) before
any engine runs, and refuses to start without it unless the operator opts out loudly. Stand-in
`nft` and `podman` first in PATH record what they are asked; the real table's effect on real
containers is tests/e2e/test_linklocal_guard.py."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from orbis.providers.local_network import bridge_name

REPO = Path(__file__).resolve().parents[2]
RULESET = REPO / "scripts" / "linklocal-guard.nft"

NFT = """#!/usr/bin/env bash
echo "nft $*" >>"$CALLS"
[[ ${NFT_FAILS:-} == 1 ]] && { echo "netlink: Error: Operation not permitted" >&2; exit 1; }
exit 0
"""
PODMAN = """#!/usr/bin/env bash
echo "podman $1" >>"$CALLS"
exit 1
"""


def _start(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    if Path("/var/run/docker.sock").is_socket():
        pytest.skip("a Docker socket exists: engine.sh would prefer that daemon")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("nft", NFT), ("podman", PODMAN)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls"
    full = {k: v for k, v in os.environ.items() if k != "ORBIS_ENGINE_UNGUARDED"}
    full.update(PATH=f"{bin_dir}:{os.environ['PATH']}", CALLS=str(calls),
                ORBIS_HOME=str(tmp_path / "home"), ORBIS_ENGINE_WAIT="3", **env)  # fmt: skip
    done = subprocess.run([str(REPO / "scripts/engine.sh"), "start"], env=full,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_start_installs_the_guard_before_any_engine(tmp_path: Path) -> None:
    _done, calls = _start(tmp_path)
    assert calls[:2] == [f"nft -f {RULESET}", "podman system"], calls


def test_start_refuses_when_the_guard_cannot_be_installed(tmp_path: Path) -> None:
    done, calls = _start(tmp_path, NFT_FAILS="1")
    assert done.returncode == 1
    assert "could not install" in done.stderr and "ORBIS_ENGINE_UNGUARDED" in done.stderr
    assert calls == [f"nft -f {RULESET}"]  # no engine was started unguarded
    assert not (tmp_path / "home" / "run" / "podman.pid").exists()


def test_the_opt_out_skips_the_guard_loudly(tmp_path: Path) -> None:
    done, calls = _start(tmp_path, ORBIS_ENGINE_UNGUARDED="1")
    assert "WARNING: ORBIS_ENGINE_UNGUARDED=1" in done.stderr
    assert not any(c.startswith("nft") for c in calls), calls


def test_the_ruleset_covers_every_bridge_orbis_makes_on_both_paths() -> None:
    text = RULESET.read_text()
    hooks = re.findall(r"hook (\w+) priority[^\n]*\n\s*iifname \"([^\"]+)\" jump linklocal", text)
    assert {hook for hook, _ in hooks} == {"input", "forward"}, hooks
    # the interface pattern must match the names local_network gives every network's bridge
    assert all(fnmatch.fnmatchcase(bridge_name(), pattern) for _, pattern in hooks)
    rules = text.split("chain linklocal", 1)[1]
    assert "ip daddr 169.254.0.0/16" in rules and "fd00:ec2::254" in rules
    assert "accept" not in rules  # nothing in the guard lets a packet through early


def test_the_ruleset_is_valid_nftables() -> None:
    nft = shutil.which("nft") or shutil.which("/usr/sbin/nft")
    if nft is None or os.geteuid() != 0:
        pytest.skip("needs nft and root to check the ruleset")
    done = subprocess.run([nft, "-c", "-f", str(RULESET)], capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
