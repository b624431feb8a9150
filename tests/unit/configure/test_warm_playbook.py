"""An ansible-playbook started ahead (configure/ansible.py WarmPlaybook) runs the level it was
started for in that same process, with a real Ansible in a host runner: the level's output
names the pid the process wrote when it had started, before the level existed. One started
for another runner is let go unrun and the level runs afresh."""

from __future__ import annotations

import asyncio
from pathlib import Path

from orbis.configure.ansible import StepRun, Target, WarmPlaybook, run_level
from orbis.runner.host import HostRunner

WAIT = 120.0  # seconds a started process may take to write its pid on a loaded machine


def runner(tmp_path: Path, name: str = "work") -> HostRunner:
    work = tmp_path / name
    work.mkdir()
    return HostRunner(work, tmp_path / "key")


def step(folder: Path) -> StepRun:
    task = {"ansible.builtin.copy": {"dest": str(folder / "done.txt"), "content": "ran\n"},
            "delegate_to": "localhost"}  # fmt: skip
    return StepRun("s", ["n0"], [{"hosts": "all", "gather_facts": False, "tasks": [task]}])


async def ready_pid(warm: WarmPlaybook, folder: Path) -> str:
    """The pid the process wrote once Ansible was imported (it waits for its level then)."""
    ready = folder / f"{warm.label}.ready"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not ready.exists() or not ready.read_text():
        assert not warm.task.done(), await warm.task
        assert loop.time() < deadline, "the process never got ready"
        await asyncio.sleep(0.05)
    return ready.read_text()


def test_the_level_runs_in_the_process_started_ahead(tmp_path):
    r = runner(tmp_path)

    async def scenario() -> tuple[str, dict, str]:
        warm = WarmPlaybook(r, 1, "level-1-warm")
        pid = await ready_pid(warm, r.workspace)
        target = Target("n0", "127.0.0.1", port=1)
        results, output = await run_level(r, [target], [step(r.workspace)], label="unused",
                                          warm=warm)
        return pid, results, output

    pid, results, output = asyncio.run(scenario())
    assert results[("s", "n0")].ok, results
    assert f"(started ahead, pid {pid})" in output
    assert (r.workspace / "done.txt").read_text() == "ran\n"
    # the level took the label of the process (its events file), not the one asked for
    assert (r.workspace / "level-1-warm.yml").exists()
    assert not (r.workspace / "unused.yml").exists()


def test_a_process_started_for_another_runner_is_let_go_and_the_level_runs_afresh(tmp_path):
    mine, other = runner(tmp_path), runner(tmp_path, "other")

    async def scenario() -> tuple[dict, str, tuple[int, str]]:
        warm = WarmPlaybook(other, 1, "level-1-warm")
        await ready_pid(warm, other.workspace)
        target = Target("n0", "127.0.0.1", port=1)
        results, output = await run_level(mine, [target], [step(mine.workspace)], label="fresh",
                                          warm=warm)
        return results, output, await asyncio.wait_for(warm.task, WAIT)

    results, output, (code, warm_output) = asyncio.run(scenario())
    assert results[("s", "n0")].ok and "started ahead" not in output
    assert (mine.workspace / "fresh.yml").exists()
    # the other process read its go-file (null) and ended without running anything
    assert code == 0 and "started ahead" not in warm_output
    assert not (other.workspace / "done.txt").exists()
