"""Two servers on one database (SQLite file, PostgreSQL, MariaDB): exactly one monitors an
elastic cluster; when it stops, or dies leaving its lease to run out, the other takes over and
resumes from the stored state (a decision already said is not said again). And a monitor whose
lease ran out while it read Slurm acts on nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from orbis.auth import identify
from orbis.elastic.monitor import Monitor, lease_name
from orbis.providers.sim import SimProvider
from orbis.service import OrbisService
from orbis.store.repository import Store

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "elastic-slurm.yaml"
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"
WAITING = "waiting for the front-end 'front' to be configured"


def template() -> str:
    """The example with no front-end machine (nothing to launch) and a 1 s poll."""
    text = EXAMPLE.read_text()
    marker = "    front:\n      type: tosca.nodes.indigo.Compute\n      capabilities:\n"
    knobs = "      metadata:\n"
    assert marker in text and knobs in text
    text = text.replace(marker, marker + "        scalable:\n          properties:\n"
                        "            count: 0\n")  # fmt: skip
    return text.replace(knobs, knobs + "        poll: 1\n", 1)


async def until(check: Callable[[], bool], timeout: float = 30) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


@pytest.mark.parametrize("how", ["stops", "dies"])
async def test_one_monitor_per_cluster_and_the_other_takes_over(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setenv("ORBIS_LEASE_SECONDS", "3")
    cycles: list[str] = []  # the holder of each monitor cycle run, by any server
    original = Monitor.cycle

    async def cycle(self: Monitor) -> float | None:
        cycles.append(self.host.leases.holder)
        return await original(self)

    monkeypatch.setattr(Monitor, "cycle", cycle)
    servers = [OrbisService(Store(db_url), SimProvider(tmp_path / "cloud.db"), tmp_path / "w",
                            holder=f"test:{n}") for n in (1, 2)]  # fmt: skip
    for server in servers:
        await server.resume()
    stopped: list[OrbisService] = []
    try:
        infra = await servers[0].create(identify(ALICE)[0], template())
        name = lease_name(infra)
        assert await until(lambda: len(cycles) >= 4)  # both servers looked for 3+ s
        assert len(set(cycles)) == 1, cycles  # one server monitors; the other never ran it
        first = next(s for s in servers if s.leases.holder == cycles[0])
        other = next(s for s in servers if s is not first)
        assert other.leases.holder_of(name) == first.leases.holder
        if how == "dies":  # its lease is left to run out, as a killed process's would
            monkeypatch.setattr(first.leases, "release", lambda name: None)
        await first.monitors.stop()
        stopped.append(first)
        mark = len(cycles)
        assert await until(lambda: len(cycles) > mark + 2), "nobody took over"
        assert set(cycles[mark:]) == {other.leases.holder}
        assert other.leases.holder_of(name) == other.leases.holder
        # resumed from the stored state: the waiting was said once, by the first server only
        events = [e for e in other.store.events(infra) if e.subject == "elastic"]
        assert [e.message for e in events] == [WAITING]
        assert other.elastic(identify(ALICE)[0], infra)["monitor"] == other.leases.holder
    finally:
        for server in servers:
            await server.shutdown()


async def test_a_monitor_whose_lease_ran_out_while_reading_acts_on_nothing(
    tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'orbis.db'}")
    server = OrbisService(store, SimProvider(tmp_path / "cloud.db"), tmp_path / "w")
    infra = await server.create(identify(ALICE)[0], template())
    store.add_nodes(infra, ["front"])
    front = next(n for n in store.nodes(infra) if n.name == "front")
    store.update_node(infra, front.vm_id, state="configured", private_ip="10.0.0.2")
    nodes = "NodeName=front State=IDLE CPUTot=1 CPUAlloc=0 RealMemory=500 Partitions=debug"
    jobs = ("JobId=7 JobName=wrap JobState=PENDING Reason=Resources Partition=debug "
            "NumNodes=1 NumCPUs=1")  # fmt: skip
    answers = {True: 0, False: 0}

    async def on_front(row: object, node: object, command: str) -> str:
        return f"+0000\n{nodes}\n@@orbis-jobs@@\n{jobs}\n"

    for ours in (False, True):
        monitor = Monitor(server, infra, lambda ours=ours: ours)  # type: ignore[misc]
        monitor._on_front = on_front  # type: ignore[method-assign]
        before = len(store.nodes(infra))
        pause = await monitor.cycle()
        answers[ours] = len(store.nodes(infra)) - before
        assert (pause is None) == (not ours)
    assert answers == {False: 0, True: 1}  # the job powers a worker on only while ours


async def test_a_poll_longer_than_the_lease_keeps_it(tmp_path: Path) -> None:
    """Between two cycles the lease is renewed every third of its life, so another server
    cannot take a cluster whose `poll` is longer than the lease."""
    from orbis.elastic.monitor import Monitors
    from orbis.store.coordination import Leases

    store = Store(f"sqlite:///{tmp_path / 'orbis.db'}")
    mine, theirs = Leases(store, "a", ttl=0.6), Leases(store, "b", ttl=0.6)

    class Host:
        leases = mine

    assert mine.try_acquire("elastic:x")
    pausing = asyncio.create_task(Monitors(Host())._pause("elastic:x", 2.0))  # type: ignore[arg-type]
    taken = []
    while not pausing.done():
        taken.append(theirs.try_acquire("elastic:x"))
        await asyncio.sleep(0.1)
    assert pausing.result() is True and taken and not any(taken)
