"""Leases that serialize work on an infrastructure across service processes, and the action log.

A lease is a row with an expiry. Taking it is one conditional UPDATE (or an INSERT when there is
no row), which every database we support makes atomic, so two processes can never both hold it.
The holder renews it while it works; if the holder dies, the lease runs out and another process
(or the restarted one) takes over.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from orbis.store.repository import Store
from orbis.store.schema import ActionRow, LockRow, utcnow


def holder_id() -> str:
    """This process, as it appears in leases: host and pid (so a restart can spot its ghosts)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive_here(holder: str) -> bool:
    """Whether a holder on this host is a live process (a dead one's leases can be taken)."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine: trust the expiry
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Leases:
    def __init__(self, store: Store, holder: str | None = None, ttl: float = 15.0) -> None:
        self.store = store
        self.holder = holder or holder_id()
        self.ttl = ttl

    def try_acquire(self, name: str) -> bool:
        now = utcnow()
        expires = now + timedelta(seconds=self.ttl)
        with self.store.session() as s:
            row = s.get(LockRow, name)
            if row is None:
                try:
                    with s.begin_nested():
                        s.add(LockRow(name=name, holder=self.holder, expires_at=expires))
                    return True
                except IntegrityError:
                    return False  # someone else inserted it first
            current = row.holder
            expired = _aware(row.expires_at) < now or not _alive_here(current)
            if current != self.holder and not expired:
                return False
            taken = s.execute(
                update(LockRow)
                .where(LockRow.name == name, LockRow.holder == current,
                       LockRow.expires_at == row.expires_at)
                .values(holder=self.holder, expires_at=expires)
            )  # fmt: skip
            return bool(taken.rowcount)  # type: ignore[attr-defined]

    def renew(self, name: str) -> bool:
        expires = utcnow() + timedelta(seconds=self.ttl)
        with self.store.session() as s:
            done = s.execute(
                update(LockRow)
                .where(LockRow.name == name, LockRow.holder == self.holder)
                .values(expires_at=expires)
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def release(self, name: str) -> None:
        with self.store.session() as s:
            s.execute(delete(LockRow).where(LockRow.name == name, LockRow.holder == self.holder))


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ActionLog:
    """Every provider action is written before it runs and completed after."""

    def __init__(self, store: Store, holder: str) -> None:
        self.store = store
        self.holder = holder

    def begin(self, infra_id: str, vm_id: int | None, kind: str) -> int:
        with self.store.engine.begin() as conn:
            result = conn.execute(_INSERT_ACTION, {
                "infrastructure_id": infra_id, "vm_id": vm_id, "kind": kind,
                "status": "started", "message": "", "holder": self.holder,
                "started_at": utcnow(), "finished_at": None,
            })  # fmt: skip
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def end(self, action_id: int, ok: bool, message: str = "") -> None:
        with self.store.engine.begin() as conn:
            conn.execute(_END_ACTION, {"_id": action_id, "status": "done" if ok else "failed",
                                       "message": message, "finished_at": utcnow()})  # fmt: skip

    def actions(self, infra_id: str) -> list[ActionRow]:
        with self.store.session() as s:
            q = select(ActionRow).where(ActionRow.infrastructure_id == infra_id)
            return list(s.scalars(q.order_by(ActionRow.id)))


# built once: these run twice per provider action
_INSERT_ACTION = insert(ActionRow)
_END_ACTION = (
    update(ActionRow)
    .where(ActionRow.id == bindparam("_id"))
    .values(status=bindparam("status"), message=bindparam("message"),
            finished_at=bindparam("finished_at"))
)  # fmt: skip
