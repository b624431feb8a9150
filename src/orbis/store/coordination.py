"""Leases that give each queued piece of work to exactly one server, and the action log.

Work is an infrastructure whose desired state is not brought about yet (its generation is ahead
of the one reconciled); the `locks` table holds one lease row per infrastructure. A server claims
a lease in one transaction: it selects the rows that are free (expired, or already its own) with
`FOR UPDATE SKIP LOCKED` — PostgreSQL and MariaDB 10.6+ skip rows another server is claiming at
that moment instead of waiting for it — and sets itself as holder with an expiry, by an UPDATE
that repeats the condition. On SQLite (one machine) the UPDATE alone is the claim: SQLite runs
one writing transaction at a time, so two claims of one row cannot both match.

Leases expire by time only, with the database's rows as the only shared truth: the holder renews
its leases every third of their lifetime (ORBIS_LEASE_SECONDS), and a server that dies
(kill -9, a lost machine) stops renewing, so its leases run out and the next server that polls
the store takes the work over. Holder ids are unique per process (host, pid and a random part),
so two machines with one host name, or a reused pid, never share a lease. Clocks of the servers
are assumed to agree to well within a lease's lifetime (NTP).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from orbis.config import coordination_settings
from orbis.metrics import TAKEOVERS
from orbis.store.repository import Store
from orbis.store.retries import retry_deadlocks
from orbis.store.schema import ActionRow, LockRow, utcnow

FREE = ""  # the holder of a released lease
NEVER = datetime(1970, 1, 1, tzinfo=UTC)  # the expiry of a released lease


def holder_id() -> str:
    """This process, as it appears in leases and actions: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@retry_deadlocks
class Leases:
    def __init__(self, store: Store, holder: str | None = None, ttl: float | None = None) -> None:
        self.store = store
        self.holder = holder or holder_id()
        self.ttl = ttl if ttl is not None else coordination_settings().lease_seconds
        self.takeovers = 0  # leases taken from a holder that let them expire (metrics)

    def try_acquire(self, name: str) -> bool:
        return name in self.claim([name])

    def claim(self, names: list[str]) -> list[str]:
        """Take every lease of `names` that is free or ours; the names taken."""
        if not names:
            return []
        self._ensure_rows(names)
        now = utcnow()
        expires = now + timedelta(seconds=self.ttl)
        free = or_(LockRow.holder == self.holder, LockRow.expires_at < now)
        taken: list[str] = []
        with self.store.engine.begin() as conn:
            candidates = conn.execute(
                select(LockRow.name, LockRow.holder)
                .where(LockRow.name.in_(names), free)
                .order_by(LockRow.name)
                .with_for_update(skip_locked=True)  # not rendered on SQLite
            ).all()
            for name, previous in candidates:
                done = conn.execute(
                    update(LockRow).where(LockRow.name == name, free)
                    .values(holder=self.holder, expires_at=expires)
                )  # fmt: skip
                if done.rowcount:
                    taken.append(name)
                    if previous not in (FREE, self.holder):
                        self.takeovers += 1
                        TAKEOVERS.inc()
        return taken

    def _ensure_rows(self, names: list[str]) -> None:
        with self.store.session() as s:
            known = set(s.scalars(select(LockRow.name).where(LockRow.name.in_(names))))
        for name in names:
            if name in known:
                continue
            try:
                with self.store.engine.begin() as conn:
                    conn.execute(insert(LockRow).values(name=name, holder=FREE, expires_at=NEVER))
            except IntegrityError:
                pass  # another server made it first

    def renew(self, name: str) -> bool:
        """Extend our lease; False if it is not ours any more (another server took it)."""
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
            s.execute(
                update(LockRow).where(LockRow.name == name, LockRow.holder == self.holder)
                .values(holder=FREE, expires_at=NEVER)
            )  # fmt: skip

    def holder_of(self, name: str) -> str | None:
        """Who holds a lease now (None: nobody, or it expired)."""
        with self.store.session() as s:
            row = s.get(LockRow, name)
            if row is None or row.holder == FREE or _aware(row.expires_at) < utcnow():
                return None
            return row.holder


def _aware(moment: datetime) -> datetime:
    # SQLite and MariaDB hand back naive datetimes (stored in UTC) for timezone-aware columns
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@retry_deadlocks
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
