"""EC3's RADL features of a worker pool and what they mean to the elastic policy and monitor:
`ec3_node_pattern` (the pool's host names, and so its size), `ec3_reuse_nodes` (powered off =
stopped, started again first), `ec3_destroy_interval`/`ec3_destroy_safe` (an idle worker paid
by the period goes only at the end of one)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from orbis.elastic.monitor import Monitor
from orbis.elastic.policy import Decision, History, Worker, decide
from orbis.elastic.slurm import MARKER, parse
from orbis.elastic.state import MonitorState
from orbis.engine.naming import im_variables
from orbis.lang import load_template
from orbis.lang.errors import TemplateError
from orbis.model.elastic import ElasticCluster, Knobs, WorkerPool
from orbis.model.hostnames import host_name
from orbis.store.repository import Store
from orbis.store.schema import NodeRow

HYBRID = Path(__file__).resolve().parents[2] / "fixtures" / "elastic" / "ec3_hybrid.radl"


def pools(features: str, system: str = "wn") -> list[WorkerPool]:
    text = HYBRID.read_text().replace(f"system {system} (\n",
                                      f"system {system} (\n{features}")  # fmt: skip
    elastic = load_template("ec3.radl", text=text).elastic
    assert elastic is not None
    return elastic.pools


def error(features: str) -> str:
    with pytest.raises(TemplateError) as caught:
        pools(features, "wn_b")
    return str(caught.value)


def test_radl_features_are_read_per_pool() -> None:
    wn, wn_b = pools("  ec3_reuse_nodes = 'yes' and\n  ec3_destroy_interval = 3600 and\n"
                     "  ec3_destroy_safe = 300 and\n")  # fmt: skip
    assert (wn.names, wn.reuse, wn.destroy_interval, wn.destroy_safe) == (
        ("wn1", "wn2"), True, 3600.0, 300.0)
    assert (wn_b.names, wn_b.reuse, wn_b.destroy_interval) == ((), False, 0.0)


@pytest.mark.parametrize(("pattern", "names"), [
    ("wn[1-3]", ("wn1", "wn2", "wn3")), ("wn[1,2,5]", ("wn1", "wn2", "wn5")),
    ("node[8-9,1]x", ("node8x", "node9x", "node1x")), ("bigwn", ("bigwn",)),
])  # fmt: skip
def test_a_node_pattern_names_the_workers_and_bounds_the_pool(pattern: str,
                                                              names: tuple[str, ...]) -> None:
    wn_b = pools(f"  ec3_node_pattern = '{pattern}' and\n", "wn_b")[1]
    assert wn_b.names == names
    assert wn_b.max == min(2, len(names))  # ec3_max_instances 2, or fewer names


def test_bad_features_are_errors_at_their_line() -> None:
    assert "ec3.radl:23:3: ec3_node_pattern of 'wn_b' must be a host name" in error(
        "  ec3_node_pattern = 'wn[a-c]' and\n")
    assert "ec3_reuse_nodes of 'wn_b' must be 'yes' or 'no'" in error(
        "  ec3_reuse_nodes = 'maybe' and\n")
    assert "ec3_destroy_interval of 'wn_b' must be a number of seconds >= 0" in error(
        "  ec3_destroy_interval = 'hourly' and\n")


def test_a_given_name_is_the_host_name() -> None:
    assert host_name(None, "wn", 7, "wn3") == ("wn3", "localdomain")
    assert host_name(None, "wn", 7) == ("wn-7", "localdomain")
    # what a worker's recipes read (IM_NODE_HOSTNAME) comes from its record's spec
    template = load_template(HYBRID)
    node = NodeRow(name="wn", vm_id=7, private_ip="10.0.0.7", public_ip=None, site=None,
                   spec={"host_name": "wn2"})  # fmt: skip
    facts = im_variables(template, node, node, "inf", "local", "")
    assert (facts["IM_NODE_HOSTNAME"], facts["IM_MASTER_HOSTNAME"]) == ("wn2", "wn2")


# -- the policy ---------------------------------------------------------------------------
def cluster(**pool: Any) -> ElasticCluster:
    return ElasticCluster("ec", "slurm", "front", [WorkerPool("wn", 0, 3, 1, 400, **pool)],
                          Knobs(idle_time=300, poll=5))  # fmt: skip


def idle(vm: int, age: float, idle_for: float = 400.0) -> Worker:
    return Worker(vm, "wn", f"wn{vm}", "configured", age, "idle", 1, idle_for)


def test_a_worker_paid_by_the_period_goes_only_at_the_end_of_one() -> None:
    paid = cluster(destroy_interval=3600, destroy_safe=60)
    early, late, second = idle(1, age=1000), idle(2, age=3550), idle(3, age=3600 + 3590)
    out = decide(paid, [early, late, second], [], [], History())
    assert out == [
        Decision("wait", "wn1 idle 400 s > 300 s; kept until the end of its paid 3600 s "
                 "(ec3_destroy_interval): 2600 s left", "wn", 1, "wn1"),
        Decision("power_off", "wn2 idle 400 s > 300 s: powering off", "wn", 2, "wn2"),
        Decision("power_off", "wn3 idle 400 s > 300 s: powering off", "wn", 3, "wn3"),
    ]  # fmt: skip
    # without a safe margin, the last poll of the period is the margin
    assert [d.action for d in decide(cluster(destroy_interval=3600), [idle(1, age=3596)], [],
                                     [], History())] == ["power_off"]  # fmt: skip
    # the idle time still comes first
    assert decide(paid, [idle(1, age=3590, idle_for=100)], [], [], History()) == []


def test_a_reused_pool_stops_its_idle_workers() -> None:
    out = decide(cluster(reuse=True), [idle(1, age=50)], [], [], History())
    assert out == [Decision("power_off", "wn1 idle 400 s > 300 s: stopping it "
                            "(ec3_reuse_nodes)", "wn", 1, "wn1")]  # fmt: skip


# -- the monitor's acts, on a real store ------------------------------------------------
class Scheduler:
    def __init__(self) -> None:
        self.kicked: list[str] = []

    def kick(self, infra_id: str) -> None:
        self.kicked.append(infra_id)


class Host:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.scheduler = Scheduler()

    def check_quota(self, owner_key: str, total: int, infra_id: str | None = None) -> None:
        return None

    @contextmanager
    def quota_lock(self, owner_key: str):  # type: ignore[no-untyped-def]
        yield


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'orbis.db'}")


async def test_power_on_names_from_the_pattern_and_restarts_a_stopped_worker_first(
    store: Store
) -> None:
    row = store.create_infrastructure(id="inf-1", owner_key="k", owner_name="alice", template="x")
    host = Host(store)
    monitor = Monitor(host, row.id)  # type: ignore[arg-type]
    elastic = cluster(names=("wn1", "wn2", "wn3"), reuse=True)
    state = MonitorState()
    on = Decision("power_on", "1 job pending need 1 CPU; powering on a worker on wn", "wn")
    first = await monitor._act(row, None, elastic, on, state, 1.0)  # type: ignore[arg-type]
    second = await monitor._act(row, None, elastic, on, state, 2.0)  # type: ignore[arg-type]
    assert first is not None and first.reason.endswith("(VM 0, wn1)")
    assert second is not None and second.reason.endswith("(VM 1, wn2)")
    nodes = {n.vm_id: n for n in store.nodes(row.id)}
    assert {v: n.spec for v, n in nodes.items()} == {0: {"host_name": "wn1"},
                                                     1: {"host_name": "wn2"}}  # fmt: skip
    # idle wn1 is stopped, not removed (ec3_reuse_nodes); its name stays taken
    off = Decision("power_off", "wn1 idle 400 s > 300 s: stopping it (ec3_reuse_nodes)", "wn",
                   0, "wn1")  # fmt: skip
    monitor._drain = _still_idle  # type: ignore[method-assign]
    assert await monitor._act(row, None, elastic, off, state, 3.0) == off  # type: ignore[arg-type]
    assert store.node(row.id, 0).desired == "stopped"  # type: ignore[union-attr]
    # the next power-on starts it again rather than making a third worker
    again = await monitor._act(row, None, elastic, on, state, 4.0)  # type: ignore[arg-type]
    assert again is not None and again.vm_id == 0 and "starting it again" in again.reason
    assert store.node(row.id, 0).desired == "running"  # type: ignore[union-attr]
    assert len(store.nodes(row.id)) == 2
    # as old as its new start: its boot deadline and paid period begin again
    view = parse("+0000\n" + MARKER + "\n")
    workers, _, _ = monitor._workers(elastic, load_template(HYBRID), store.nodes(row.id), view,
                                     state, 10.0)  # fmt: skip
    ages = {w.vm_id: w.age for w in workers}
    assert ages[0] == 6.0 and 0 <= ages[1] < 60  # wn2: from its record, made moments ago
    third = await monitor._act(row, None, elastic, on, state, 5.0)  # type: ignore[arg-type]
    assert third is not None and third.reason.endswith("(VM 2, wn3)")
    # a pool that does not reuse removes its idle workers
    plain = cluster()
    off_plain = Decision("power_off", "wn3 idle: powering off", "wn", 2, "wn3")
    await monitor._act(row, None, plain, off_plain, state, 6.0)  # type: ignore[arg-type]
    assert store.node(row.id, 2).desired == "absent"  # type: ignore[union-attr]


async def _still_idle(row: object, front: object, name: str) -> bool:
    return True
