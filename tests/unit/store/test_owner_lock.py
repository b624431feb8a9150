"""The owner lock (store/owner_lock.py) on every database: one holder per owner at a time, a
bounded wait that ends in a refusal naming the lock; on PostgreSQL and MariaDB other owners are
never held up (SQLite has one lock for all: its writers take turns anyway)."""

from __future__ import annotations

import threading
import time

import pytest

from orbis.store.owner_lock import OwnerBusy, owner_lock
from orbis.store.repository import Store


def test_one_holder_per_owner_and_a_bounded_wait(db_url) -> None:
    store = Store(db_url)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with owner_lock(store, "alice"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        start = time.monotonic()
        with pytest.raises(OwnerBusy, match="per-user quota lock"), owner_lock(store, "alice",
                                                                              wait=0.3):
            pass
        assert 0.2 < time.monotonic() - start < 5
        if not db_url.startswith("sqlite"):
            with owner_lock(store, "bob", wait=0.3):  # another owner goes on
                pass
    finally:
        release.set()
        holder.join(10)
    with owner_lock(store, "alice", wait=0.3):  # released with its holder
        pass
