"""Leases and the action log, on every supported database (see tests/conftest.py)."""

import threading
import time

from orbis.store.coordination import ActionLog, Leases, holder_id
from orbis.store.repository import Store


def test_only_one_holder_at_a_time(db_url):
    store = Store(db_url)
    a = Leases(store, holder="elsewhere:1", ttl=0.5)
    b = Leases(store, holder="elsewhere:2", ttl=0.5)
    assert a.try_acquire("x")
    assert not b.try_acquire("x")
    assert a.try_acquire("x")  # re-entrant for its holder
    assert a.renew("x") and not b.renew("x")
    time.sleep(0.6)  # a stops renewing: the lease runs out
    assert b.try_acquire("x")
    assert b.takeovers == 1 and a.takeovers == 0  # taken from a holder that let it expire
    assert not a.renew("x")  # a learns it lost it
    b.release("x")
    assert a.try_acquire("x")
    assert a.takeovers == 0  # a released lease is free, not taken over


def test_a_lease_expires_by_time_only_whatever_its_holder_looks_like(db_url):
    """A holder on this host whose pid is not running is not a dead server: another machine
    may have the same host name. Only time frees a lease."""
    store = Store(db_url)
    host = holder_id().split(":", 1)[0]
    other_machine = Leases(store, holder=f"{host}:999999999:cafe", ttl=60)
    assert other_machine.try_acquire("y")
    assert not Leases(store, ttl=60).try_acquire("y")
    assert holder_id() != holder_id()  # unique per Leases, even in one process


def test_claims_racing_from_many_threads_give_each_lease_to_one(db_url):
    store = Store(db_url)
    names = [f"infrastructure:{n}" for n in range(12)]
    servers = [Leases(Store(db_url, run_migrations=False), holder=f"s{n}", ttl=30)
               for n in range(6)]  # fmt: skip
    won: dict[str, list[str]] = {s.holder: [] for s in servers}
    start = threading.Barrier(len(servers))

    def race(server: Leases) -> None:
        start.wait()
        won[server.holder] += server.claim(names)

    threads = [threading.Thread(target=race, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = sorted(n for taken in won.values() for n in taken)
    assert every == sorted(names)  # each claimed once, none twice, none lost
    for server in servers:
        for name in won[server.holder]:
            assert Leases(store).holder_of(name) == server.holder


def test_actions_are_recorded_before_and_after(db_url):
    store = Store(db_url)
    store.create_infrastructure(id="i1", owner_key="k", owner_name="u", template="")
    log = ActionLog(store, "me:1")
    first = log.begin("i1", 0, "launch")
    assert [(a.kind, a.status) for a in log.actions("i1")] == [("launch", "started")]
    log.end(first, False, "quota")
    [action] = log.actions("i1")
    assert (action.status, action.message) == ("failed", "quota") and action.finished_at


def test_generations_and_pending_work(db_url):
    store = Store(db_url)
    store.create_infrastructure(id="i1", owner_key="k", owner_name="u", template="")
    assert store.pending_work() == ["i1"]
    store.mark_reconciled("i1", 1)
    assert store.pending_work() == []
    assert store.request("i1", desired="absent") == 2
    assert store.pending_work() == ["i1"]
    store.mark_reconciled("i1", 1)  # an older generation never moves it back
    assert store.get("i1").reconciled == 1


def test_long_text_and_microseconds_survive(db_url):
    """MariaDB's plain TEXT stops at 64 KiB and its DATETIME drops microseconds."""
    store = Store(db_url)
    row = store.create_infrastructure(id="i2", owner_key="k", owner_name="u", template="")
    store.append_log("i2", "x" * 200_000 + "é✓")
    again = store.get("i2")
    assert again.log.endswith("é✓") and len(again.log) == 200_002
    assert again.created_at.microsecond == row.created_at.microsecond
