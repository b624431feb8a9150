"""The runner container's options (orbis/runner/options.py): what a play in it may reach.
tests/e2e/test_runner_isolation.py checks the same on a real container's HostConfig."""

from pathlib import Path

from orbis.configure import storage
from orbis.providers.base import LABEL_INFRASTRUCTURE, LABEL_INSTALLATION, LABEL_RUNNER
from orbis.runner.options import PATHS, Limits, container_name, container_options


def options(tmp_path: Path) -> dict:
    return container_options(
        infrastructure_id="infra-1", installation="inst-9", image="orbis-runner:latest",
        network="orbis-infra-1", workspace=tmp_path / "runner", key_file=tmp_path / "key",
        callback_dir=tmp_path / "cb", roles_dir=tmp_path / "roles",
        limits=Limits(cpus=1.5, memory_mb=512, pids=300),
    )  # fmt: skip


def test_no_privilege_no_capability_read_only_root(tmp_path):
    opts = options(tmp_path)
    assert opts["privileged"] is False
    assert opts["cap_drop"] == ["ALL"] and "cap_add" not in opts
    assert opts["security_opt"] == ["no-new-privileges"]
    assert opts["read_only"] is True
    assert set(opts["tmpfs"]) == {"/tmp", str(PATHS.home)}
    assert all("size=" in flags and "nosuid" in flags for flags in opts["tmpfs"].values())


def test_limits(tmp_path):
    opts = options(tmp_path)
    assert opts["pids_limit"] == 300
    assert opts["mem_limit"] == opts["memswap_limit"] == 512 * 2**20
    assert opts["nano_cpus"] == 1_500_000_000


def test_mounts_only_this_infrastructure_and_ours_read_only(tmp_path):
    mounts = {m["Target"]: m for m in options(tmp_path)["mounts"]}
    assert {t: (m["Source"], m["ReadOnly"]) for t, m in mounts.items()} == {
        str(PATHS.workspace): (str(tmp_path / "runner"), False),
        str(PATHS.key_file): (str(tmp_path / "key"), True),
        str(PATHS.callback_dir): (str(tmp_path / "cb"), True),
        str(PATHS.roles_dir): (str(tmp_path / "roles"), True),
        str(PATHS.scripts_dir / "disks.py"): (str(storage.SCRIPT), True),  # the file only
    }
    assert all(m["Type"] == "bind" for m in mounts.values())
    assert "volumes" not in options(tmp_path) and "devices" not in options(tmp_path)


def test_environment_is_made_from_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("ORBIS_SECRET_KEY", "s3cret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws")
    env = options(tmp_path)["environment"]
    assert set(env) == {"PATH", "HOME", "LANG"}
    assert "s3cret" not in str(env) and "aws" not in str(env)


def test_one_network_and_labels_that_say_runner(tmp_path):
    opts = options(tmp_path)
    assert opts["network"] == "orbis-infra-1" and "network_mode" not in opts
    assert opts["labels"] == {LABEL_INFRASTRUCTURE: "infra-1", LABEL_RUNNER: "true",
                              LABEL_INSTALLATION: "inst-9"}  # fmt: skip
    assert opts["name"] == container_name("infra-1") == "orbis-infra-1-runner"
