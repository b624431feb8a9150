import os
import subprocess
import sys
import time

from orbis.store.coordination import ActionLog, Leases, holder_id
from orbis.store.repository import Store


def test_only_one_holder_at_a_time(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db'}")
    a = Leases(store, holder="elsewhere:1", ttl=0.5)
    b = Leases(store, holder="elsewhere:2", ttl=0.5)
    assert a.try_acquire("x")
    assert not b.try_acquire("x")
    assert a.try_acquire("x")  # re-entrant for its holder
    assert a.renew("x") and not b.renew("x")
    time.sleep(0.6)  # a stops renewing: the lease runs out
    assert b.try_acquire("x")
    assert not a.renew("x")  # a learns it lost it
    b.release("x")
    assert a.try_acquire("x")


def test_a_dead_process_on_this_host_loses_its_leases_at_once(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db'}")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    ghost = Leases(store, holder=f"{holder_id().rsplit(':', 1)[0]}:{dead}", ttl=60)
    assert ghost.try_acquire("y")
    assert Leases(store, ttl=60).try_acquire("y")
    alive = Leases(store, holder=f"{holder_id().rsplit(':', 1)[0]}:{os.getpid()}", ttl=60)
    other = Leases(store, holder="elsewhere:3", ttl=60)
    assert alive.try_acquire("z") and not other.try_acquire("z")


def test_actions_are_recorded_before_and_after(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db'}")
    store.create_infrastructure(id="i1", owner_key="k", owner_name="u", template="")
    log = ActionLog(store, "me:1")
    first = log.begin("i1", 0, "launch")
    assert [(a.kind, a.status) for a in log.actions("i1")] == [("launch", "started")]
    log.end(first, False, "quota")
    [action] = log.actions("i1")
    assert (action.status, action.message) == ("failed", "quota") and action.finished_at


def test_generations_and_pending_work(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db'}")
    store.create_infrastructure(id="i1", owner_key="k", owner_name="u", template="")
    assert store.pending_work() == ["i1"]
    store.mark_reconciled("i1", 1)
    assert store.pending_work() == []
    assert store.request("i1", desired="absent") == 2
    assert store.pending_work() == ["i1"]
    store.mark_reconciled("i1", 1)  # an older generation never moves it back
    assert store.get("i1").reconciled == 1
