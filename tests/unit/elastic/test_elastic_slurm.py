"""Parsing what scontrol writes (Slurm 22.05, one line per record with -o)."""

from pathlib import Path

import pytest

from orbis.elastic.slurm import (
    MARKER,
    SlurmReadError,
    delete_command,
    fields,
    parse,
)

# captured from Slurm 22.05 (`scontrol -o show nodes|jobs`), a few lines cut short
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "elastic"
NODES = (FIXTURES / "scontrol_nodes.txt").read_text()
JOBS = (FIXTURES / "scontrol_jobs.txt").read_text()


def test_fields_keep_values_with_spaces_and_equals():
    f = fields("NodeName=x Reason=Not responding [slurm@t] CfgTRES=cpu=1,mem=7M State=DOWN*")
    assert f == {
        "NodeName": "x",
        "Reason": "Not responding [slurm@t]",
        "CfgTRES": "cpu=1,mem=7M",
        "State": "DOWN*",
    }


def test_node_kinds_mixed_and_completing_are_busy():
    view = parse(NODES + MARKER + "\n" + JOBS)
    kinds = {n.name: n.kind for n in view.nodes.values()}
    assert kinds == {
        "wn-a-1": "idle",
        "wn-a-2": "busy",
        "wn-b-3": "down",
        "wn-b-4": "busy",
        "wn-b-5": "drain",
        "wn-b-6": "off",
        "wn-b-7": "busy",
    }
    assert view.nodes["wn-a-2"].cpus == 2 and view.nodes["wn-a-2"].cpus_alloc == 1
    assert view.nodes["wn-a-1"].address == "10.88.0.5"


def test_jobs_demand():
    view = parse(NODES + MARKER + "\n" + JOBS)
    assert [j.id for j in view.jobs] == ["7", "8", "9", "10"]
    seven, _, nine, ten = view.jobs
    assert (seven.cpus, seven.nodes, seven.memory_mb, seven.reason) == (2, 1, 500, "Resources")
    assert ten.cpus_per_node == 2 and ten.memory_mb == 2048  # 1 GB per CPU, 2 CPUs per node
    assert nine.node_list == "wn-a-2"
    # a dependency is no reason to power on; running jobs are not demand
    assert [j.id for j in view.pending] == ["7", "10"]


def test_empty_cluster():
    view = parse("No nodes in the system\n" + MARKER + "\nNo jobs in the system\n")
    assert view.nodes == {} and view.jobs == []


@pytest.mark.parametrize(
    "output",
    [
        "",
        "bash: scontrol: command not found\n",
        f"slurm_load_node error: Unable to contact slurm controller\n{MARKER}\n",
    ],
)
def test_unreadable_output_is_an_error(output):
    with pytest.raises(SlurmReadError):
        parse(output)


def test_node_names_are_checked_before_a_shell_sees_them():
    assert delete_command("wn-a-1") == "scontrol delete nodename=wn-a-1"
    with pytest.raises(ValueError):
        delete_command("x; rm -rf /")


def test_the_front_ends_answer_is_read_bounded():
    import asyncio

    from orbis.elastic import monitor

    class Endless:  # a hostile front-end: scontrol replaced by `yes`
        reads = 0

        async def read(self, n: int) -> str:
            self.reads += 1
            return "y" * min(n, 65536)

    stream = Endless()
    text = asyncio.run(monitor._read_bounded(stream))  # type: ignore[arg-type]
    assert len(text) == monitor.OUTPUT_LIMIT


def test_last_busy_time_is_read_in_the_front_ends_time_zone():
    line = "NodeName=w CPUAlloc=0 CPUTot=1 State=IDLE LastBusyTime=2026-12-06T18:40:11\n"
    view = parse("+0100\n" + line + MARKER + "\nNo jobs in the system\n")
    assert view.nodes["w"].last_busy == 1796578811.0  # 17:40:11 UTC
    assert parse(line + MARKER + "\n").nodes["w"].last_busy is None  # no offset: not guessed
