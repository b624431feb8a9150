"""One owner's lock: node quotas are checked and the rows they allow are made while it is held,
so requests of one user on any server of one database take turns and can never together pass
the per-user quota (a check and its insert are one step for every other such step).

- PostgreSQL: a transaction-scoped advisory lock keyed by the owner (pg_advisory_xact_lock),
  held on a connection of its own until the rows are committed on others; `lock_timeout` bounds
  the wait.
- MariaDB/MySQL: a named lock (GET_LOCK) per owner, with a timeout, released at the end.
- SQLite (one machine; one writer at a time anyway): an exclusive `flock` on a file next to the
  database, polled until a deadline (threads and processes alike: each call opens the file);
  one lock for every owner, held for milliseconds.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from orbis.store.repository import Store

WAIT_SECONDS = 30.0
_PG_SPACE = 0x0B15_0002  # the advisory lock space of owners (the migration lock uses one key)
_MEMORY = threading.Lock()  # an in-memory SQLite database lives in one process


class OwnerBusy(RuntimeError):
    """Another request of this owner held its lock past the wait."""


@contextmanager
def owner_lock(store: Store, owner_key: str, wait: float = WAIT_SECONDS) -> Iterator[None]:
    """Hold `owner_key`'s lock for the body (OwnerBusy after `wait` seconds)."""
    digest = hashlib.sha256(owner_key.encode()).digest()
    dialect = store.engine.dialect.name
    if dialect == "postgresql":
        key = int.from_bytes(digest[:4], "big", signed=True)
        with store.engine.connect() as conn, conn.begin():
            conn.execute(text(f"SET LOCAL lock_timeout = '{int(wait * 1000)}ms'"))
            try:
                conn.execute(text("SELECT pg_advisory_xact_lock(:space, :key)"),
                             {"space": _PG_SPACE, "key": key})  # fmt: skip
            except DBAPIError as exc:
                raise OwnerBusy(_busy(wait)) from exc
            yield
    elif dialect in ("mysql", "mariadb"):
        name = f"orbis_owner_{digest.hex()[:32]}"  # names are at most 64 characters
        with store.engine.connect() as conn:
            got = conn.execute(text("SELECT GET_LOCK(:name, :wait)"),
                               {"name": name, "wait": wait}).scalar()  # fmt: skip
            if got != 1:
                raise OwnerBusy(_busy(wait))
            try:
                yield
            finally:
                conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
    else:
        with _sqlite_lock(store.engine.url.database, wait):
            yield


@contextmanager
def _sqlite_lock(database: str | None, wait: float) -> Iterator[None]:
    if database in (None, "", ":memory:"):
        if not _MEMORY.acquire(timeout=wait):
            raise OwnerBusy(_busy(wait))
        try:
            yield
        finally:
            _MEMORY.release()
        return
    fd = os.open(f"{database}.owners.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OwnerBusy(_busy(wait)) from None
                time.sleep(0.002)
        yield  # closing the file releases the lock
    finally:
        os.close(fd)


def _busy(wait: float) -> str:
    return (f"quota: another request of this user held the node count for {wait:.0f} s "
            "(the per-user quota lock); try again")  # fmt: skip
