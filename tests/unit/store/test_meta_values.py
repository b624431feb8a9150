"""Named values in the store (an overlay's CA, an elastic monitor's memory) on every database:
made, replaced, read back, listed by prefix and dropped; two servers making the same one at
once both succeed and the value is one of theirs."""

from __future__ import annotations

import threading

from orbis.store.repository import Store


def test_a_value_is_made_replaced_listed_and_dropped(db_url) -> None:
    store = Store(db_url)
    assert store.meta("overlay:a") == ""
    store.put_meta("overlay:a", "one")
    store.put_meta("overlay:a", "two")
    store.put_meta("overlay:b", "three")
    store.put_meta("elastic:a", "four")
    assert store.meta("overlay:a") == "two"
    assert sorted(store.meta_keys("overlay:")) == ["overlay:a", "overlay:b"]
    store.drop_meta("overlay:a")
    assert store.meta("overlay:a") == "" and store.meta_keys("overlay:") == ["overlay:b"]


def test_two_writers_making_one_value_at_once_both_succeed(db_url) -> None:
    stores = [Store(db_url), Store(db_url)]
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def write(store: Store, value: str) -> None:
        start.wait()
        try:
            store.put_meta("elastic:race", value)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    pairs = zip(stores, "xy", strict=True)
    threads = [threading.Thread(target=write, args=pair) for pair in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    assert stores[0].meta("elastic:race") in ("x", "y")
