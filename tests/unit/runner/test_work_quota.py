"""The runner folder's disk quota (runner/quota.py), with real commands in a host runner and a
real Ansible level: a command that writes past the quota is stopped and its step fails naming
the limit; sparse files count what they use; a full folder fails the next command at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from orbis.configure.ansible import StepRun, Target, run_level
from orbis.runner.host import HostRunner
from orbis.runner.quota import WorkQuota, measure, run_within_quota

MB = 2**20
# writes 1 MiB every 20 ms up to 400 MiB, each synced so the blocks are allocated
WRITER = """
import os, time
with open("big", "wb") as f:
    for _ in range(400):
        f.write(b"x" * 1048576); f.flush(); os.fsync(f.fileno()); time.sleep(0.02)
"""


def runner(tmp_path: Path) -> HostRunner:
    work = tmp_path / "work"
    work.mkdir()
    return HostRunner(work, tmp_path / "key")


def run(r: HostRunner, argv: list[str], quota: WorkQuota) -> tuple[int, str, str | None]:
    return asyncio.run(run_within_quota(r, argv, {}, timeout=60, tag="t", quota=quota))


def test_a_command_writing_past_the_quota_is_stopped_naming_the_limit(tmp_path):
    r = runner(tmp_path)
    code, output, refusal = run(r, ["python3", "-c", WRITER],
                                WorkQuota(max_bytes=8 * MB, interval=0.1))  # fmt: skip
    assert code != 0 and refusal is not None
    assert "disk quota of 8 MB (ORBIS_RUNNER_WORK_MB)" in output
    written = (r.workspace / "big").stat().st_size
    # the quota counts every file's blocks in the folder: it may stop the writer at 8 MiB exactly
    assert 8 * MB <= written < 400 * MB  # stopped, not left to finish
    asyncio.run(asyncio.sleep(0.3))
    assert (r.workspace / "big").stat().st_size == written  # and it is dead


def test_many_empty_files_count_against_the_quota(tmp_path):
    r = runner(tmp_path)
    script = "import pathlib\nfor i in range(5000): pathlib.Path(f'f{i}').touch()\n" \
             "import time; time.sleep(30)"  # fmt: skip
    code, output, _ = run(r, ["python3", "-c", script], WorkQuota(max_entries=1000, interval=0.1))
    assert code != 0 and "quota of 1000 files (ORBIS_RUNNER_WORK_FILES)" in output


def test_a_folder_already_past_the_quota_fails_the_next_command_unrun(tmp_path):
    r = runner(tmp_path)
    (r.workspace / "old").write_bytes(b"x" * (2 * MB))
    code, output, _ = run(r, ["python3", "-c", "open('ran', 'w')"], WorkQuota(max_bytes=MB))
    assert code != 0 and "ORBIS_RUNNER_WORK_MB" in output
    assert not (r.workspace / "ran").exists()


def test_a_sparse_file_counts_what_it_uses_and_links_are_not_followed(tmp_path):
    r = runner(tmp_path)
    with open(r.workspace / "sparse", "wb") as f:
        f.truncate(10 * 2**30)  # 10 GiB long, nothing allocated
    outside = tmp_path / "outside"
    outside.write_bytes(b"x" * (4 * MB))
    (r.workspace / "link").symlink_to(outside)
    assert measure(r.workspace, 2**40, 10**6)[0] < MB
    code, _, refusal = run(r, ["python3", "-c", "open('ran', 'w')"], WorkQuota(max_bytes=MB))
    assert code == 0 and refusal is None and (r.workspace / "ran").exists()


def test_a_level_past_the_quota_fails_every_host_naming_the_limit(tmp_path, monkeypatch):
    """A real ansible-playbook: the task (delegated to the controller) writes into the runner
    folder until stopped; the host's result names the limit, not a success."""
    monkeypatch.setenv("ORBIS_RUNNER_WORK_MB", "8")
    r = runner(tmp_path)
    task = {"ansible.builtin.command": {"argv": ["python3", "-c", WRITER],
                                        "chdir": str(r.workspace)},  # fmt: skip
            "delegate_to": "localhost"}
    step = StepRun("filler", ["n0"], [{"hosts": "all", "gather_facts": False, "tasks": [task]}])
    results, _ = asyncio.run(run_level(r, [Target("n0", "127.0.0.1", port=1)], [step],
                                       label="quota", timeout=120))  # fmt: skip
    result = results[("filler", "n0")]
    assert not result.ok
    assert "disk quota of 8 MB (ORBIS_RUNNER_WORK_MB)" in result.output
    assert (r.workspace / "big").stat().st_size < 400 * MB
