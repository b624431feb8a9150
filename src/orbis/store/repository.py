"""Reads and writes of infrastructures, nodes, steps and events.

Every state change goes through here, so every one is recorded in the events table with its time.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, delete, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from orbis.store.db import make_engine, migrate, session_factory
from orbis.store.retries import retry_deadlocks
from orbis.store.schema import (
    EventRow,
    FunctionRow,
    InfrastructureRow,
    MetaRow,
    NodeRow,
    OwnerRow,
    SiteUseRow,
    SnapshotRow,
    StepRow,
    utcnow,
)


@retry_deadlocks
class Store:
    def __init__(self, url: str, *, run_migrations: bool = True) -> None:
        self.engine: Engine = make_engine(url)
        if run_migrations:
            migrate(self.engine)
        self._sessions: sessionmaker[Session] = session_factory(self.engine)
        self._marker_lock = threading.Lock()
        self._marker_conn: sqlite3.Connection | None = None

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as s:
            yield s

    def installation_id(self) -> str:
        """This installation's id, made on first use and the same for every process."""
        with self.session() as s:
            row = s.get(MetaRow, "installation")
            if row is not None:
                return row.value
        try:
            with self.session() as s:
                s.add(MetaRow(key="installation", value=uuid.uuid4().hex[:16]))
        except IntegrityError:
            pass  # another process made it first
        with self.session() as s:
            made = s.get(MetaRow, "installation")
            assert made is not None
            return made.value

    # -- small named values (an overlay's CA, an elastic monitor's memory) -----------------
    def meta(self, key: str) -> str:
        """The value stored under `key`, "" when there is none."""
        with self.session() as s:
            row = s.get(MetaRow, key)
            return row.value if row is not None else ""

    def put_meta(self, key: str, value: str) -> None:
        """Store `value` under `key`, made or replaced (also when another server makes it at
        the same moment: the insert's conflict turns into an update)."""
        with self.session() as s:
            row = s.get(MetaRow, key)
            if row is not None:
                row.value = value
                return
        try:
            with self.session() as s:
                s.add(MetaRow(key=key, value=value))
        except IntegrityError:  # made meanwhile by another server
            with self.session() as s:
                found = s.get(MetaRow, key)
                if found is not None:
                    found.value = value

    def drop_meta(self, key: str) -> None:
        with self.session() as s:
            s.execute(delete(MetaRow).where(MetaRow.key == key))

    def meta_keys(self, prefix: str) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(MetaRow.key).where(MetaRow.key.startswith(prefix))))

    def change_marker(self) -> int | None:
        """A number that changes whenever anyone (this process or another) commits to the
        database, for caches of read answers; None where there is no such marker (then do not
        cache). It is SQLite's `data_version`, read on a connection of its own that never
        writes (a connection's own commits do not change it); ~5 µs a call."""
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        with self._marker_lock:
            try:
                if self._marker_conn is None:
                    self._marker_conn = sqlite3.connect(
                        url.database, check_same_thread=False, isolation_level=None
                    )
                row = self._marker_conn.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error:
                return None
        return int(row[0])

    # -- infrastructures -------------------------------------------------------------------
    def create_infrastructure(self, **fields: Any) -> InfrastructureRow:
        fields.setdefault("phase", "creating")
        with self.session() as s:
            row = InfrastructureRow(**fields)
            s.add(row)
            s.flush()  # the event's foreign key needs the row first
            s.add(
                EventRow(
                    infrastructure_id=row.id,
                    subject="infrastructure",
                    to_state=row.phase,
                    message="created",
                )
            )
        return row

    def get(self, infra_id: str) -> InfrastructureRow | None:
        with self.session() as s:
            return s.get(InfrastructureRow, infra_id)

    def list_ids(self, owner_key: str | None = None) -> list[str]:
        with self.session() as s:
            q = select(InfrastructureRow.id).where(InfrastructureRow.deleted.is_(False))
            if owner_key is not None:
                q = q.where(InfrastructureRow.owner_key == owner_key)
            return list(s.scalars(q.order_by(InfrastructureRow.created_at)))

    def set_phase(self, infra_id: str, phase: str, message: str = "") -> None:
        with self.session() as s:
            row = s.get(InfrastructureRow, infra_id)
            if row is None or row.phase == phase:
                return
            s.add(
                EventRow(
                    infrastructure_id=infra_id,
                    subject="infrastructure",
                    from_state=row.phase,
                    to_state=phase,
                    message=message,
                )
            )
            row.phase = phase
            if phase == "deleted":
                row.deleted = True

    def append_log(self, infra_id: str, text: str) -> None:
        with self.session() as s:
            row = s.get(InfrastructureRow, infra_id)
            if row is not None:
                row.log = (row.log or "") + text

    # -- desired state ---------------------------------------------------------------------
    def request(self, infra_id: str, **fields: Any) -> int:
        """Change what is wanted of an infrastructure; returns the new generation."""
        with self.session() as s:
            s.execute(
                update(InfrastructureRow)
                .where(InfrastructureRow.id == infra_id)
                .values(generation=InfrastructureRow.generation + 1, **fields)
            )
            row = s.get(InfrastructureRow, infra_id)
            assert row is not None
            return row.generation

    def mark_reconciled(self, infra_id: str, generation: int) -> None:
        with self.session() as s:
            s.execute(
                update(InfrastructureRow)
                .where(InfrastructureRow.id == infra_id, InfrastructureRow.reconciled < generation)
                .values(reconciled=generation)
            )

    def pending_work(self) -> list[str]:
        """Infrastructures whose desired state has not been brought about yet."""
        with self.session() as s:
            q = select(InfrastructureRow.id).where(
                InfrastructureRow.generation > InfrastructureRow.reconciled,
                InfrastructureRow.phase != "deleted",
            )
            return list(s.scalars(q))

    def update_nodes(self, infra_id: str, vm_ids: list[int] | None, **fields: Any) -> None:
        """Set fields on some (or, with None, all live) nodes of an infrastructure at once."""
        with self.session() as s:
            q = update(NodeRow).where(
                NodeRow.infrastructure_id == infra_id, NodeRow.deleted.is_(False)
            )
            if vm_ids is not None:
                q = q.where(NodeRow.vm_id.in_(vm_ids))
            s.execute(q.values(**fields))

    # -- nodes -----------------------------------------------------------------------------
    def add_nodes(self, infra_id: str, names: list[str],
                  specs: list[dict[str, Any] | None] | None = None) -> list[int]:  # fmt: skip
        """Create node records in one transaction (with their `spec`, if given); their VM ids,
        in order."""
        if not names:
            return []
        with self.engine.begin() as conn:
            # the row lock (PostgreSQL, MariaDB) makes concurrent additions take turns
            first = conn.execute(
                select(InfrastructureRow.next_vm_id)
                .where(InfrastructureRow.id == infra_id)
                .with_for_update()
            ).scalar_one()
            conn.execute(
                update(InfrastructureRow)
                .where(InfrastructureRow.id == infra_id)
                .values(next_vm_id=first + len(names))
            )
            ids = list(range(first, first + len(names)))
            now = utcnow()
            conn.execute(insert(NodeRow), [
                {"infrastructure_id": infra_id, "vm_id": vm, "name": name, "state": "pending",
                 "created_at": now, "updated_at": now, "log": "", "error": "",
                 "ssh_user": "root", "deleted": False, "desired": "running",
                 "needs_config": True, "reboot_pending": False,
                 **({"spec": specs[i]} if specs else {})}
                for i, (vm, name) in enumerate(zip(ids, names, strict=True))
            ])  # fmt: skip
            conn.execute(insert(EventRow), [
                {"infrastructure_id": infra_id, "vm_id": vm, "subject": "node", "name": name,
                 "to_state": "pending", "message": "requested", "at": now}
                for vm, name in zip(ids, names, strict=True)
            ])  # fmt: skip
            return ids

    def nodes(self, infra_id: str, *, include_deleted: bool = False) -> list[NodeRow]:
        with self.session() as s:
            q = select(NodeRow).where(NodeRow.infrastructure_id == infra_id)
            if not include_deleted:
                q = q.where(NodeRow.deleted.is_(False))
            return list(s.scalars(q.order_by(NodeRow.vm_id)))

    def adopted_provider_ids(self) -> set[str]:
        """Provider ids of live imported nodes that adopted their resource: it is labelled
        with the infrastructure it was exported from, so the orphan sweep must spare it."""
        with self.session() as s:
            q = (select(NodeRow.provider_id)
                 .join(InfrastructureRow, InfrastructureRow.id == NodeRow.infrastructure_id)
                 .where(NodeRow.adoption == "adopted", NodeRow.deleted.is_(False),
                        InfrastructureRow.deleted.is_(False)))  # fmt: skip
            return {pid for pid in s.scalars(q) if pid}

    def node(self, infra_id: str, vm_id: int) -> NodeRow | None:
        with self.session() as s:
            return s.scalars(
                select(NodeRow).where(NodeRow.infrastructure_id == infra_id, NodeRow.vm_id == vm_id)
            ).first()

    def update_node(
        self, infra_id: str, vm_id: int, *, message: str = "", log_lines: list[str] | None = None,
        **fields: Any,
    ) -> None:  # fmt: skip
        """Change a node's fields (and add lines to its log); a change of `state` is recorded
        as an event. This is the engine's hottest write: its statements are built once per set
        of fields and reused, which saves most of SQLAlchemy's per-call cost."""
        now = utcnow()
        params: dict[str, Any] = {**fields, "updated_at": now, "_infra": infra_id, "_vm": vm_id}
        if log_lines:
            params["_log"] = "".join(f"{line}\n" for line in log_lines)
        with self.engine.begin() as conn:
            name, state = conn.execute(_NODE_NAME_STATE, params).one()
            new_state = fields.get("state")
            if new_state is not None and new_state != state:
                conn.execute(_INSERT_EVENT, {
                    "infrastructure_id": infra_id, "vm_id": vm_id, "subject": "node",
                    "name": name, "from_state": state, "to_state": str(new_state),
                    "message": message, "at": now, "details": None,
                })  # fmt: skip
            conn.execute(_node_update(tuple(sorted(fields)), bool(log_lines)), params)

    def append_node_log(self, infra_id: str, vm_id: int, text: str) -> None:
        with self.session() as s:
            s.execute(
                update(NodeRow)
                .where(NodeRow.infrastructure_id == infra_id, NodeRow.vm_id == vm_id)
                .values(log=NodeRow.log + text)
            )

    # -- steps -----------------------------------------------------------------------------
    def add_step(self, infra_id: str, vm_id: int, name: str, level: int) -> int:
        with self.session() as s:
            row = StepRow(infrastructure_id=infra_id, vm_id=vm_id, name=name, level=level)
            s.add(row)
            s.flush()
            return row.id

    def update_step(
        self, step_id: int, status: str, output: str | None = None, message: str = ""
    ) -> None:
        with self.session() as s:
            row = s.get(StepRow, step_id)
            assert row is not None
            if status != row.status:
                s.add(
                    EventRow(
                        infrastructure_id=row.infrastructure_id,
                        vm_id=row.vm_id,
                        subject="step",
                        name=row.name,
                        from_state=row.status,
                        to_state=status,
                        message=message,
                    )
                )
            now = utcnow()
            if status == "running":
                row.started_at = now
            elif status in ("ok", "failed", "skipped"):
                row.finished_at = now
            row.status = status
            if output is not None:
                row.output = output

    def interrupt_steps(self, infra_id: str) -> None:
        """Close the steps an interrupted run left open."""
        with self.session() as s:
            s.execute(
                update(StepRow)
                .where(StepRow.infrastructure_id == infra_id,
                       StepRow.status.in_(("pending", "running")))
                .values(status="interrupted", finished_at=utcnow())
            )  # fmt: skip

    def steps(self, infra_id: str) -> list[StepRow]:
        with self.session() as s:
            q = select(StepRow).where(StepRow.infrastructure_id == infra_id)
            return list(s.scalars(q.order_by(StepRow.level, StepRow.id)))

    # -- events ----------------------------------------------------------------------------
    def events(self, infra_id: str, after_id: int = 0) -> list[EventRow]:
        with self.session() as s:
            q = (
                select(EventRow)
                .where(EventRow.infrastructure_id == infra_id, EventRow.id > after_id)
                .order_by(EventRow.id)
            )
            return list(s.scalars(q))

    def last_event_id(self, infra_id: str) -> int:
        """The id of the infrastructure's newest event (0: none), to follow from."""
        with self.session() as s:
            found = s.scalar(select(func.max(EventRow.id)).where(
                EventRow.infrastructure_id == infra_id))  # fmt: skip
            return int(found or 0)

    # -- sites an infrastructure was prepared at ------------------------------------------
    def add_site_use(self, infra_id: str, site: str) -> None:
        """Record (once) that `site` holds something of the infrastructure."""
        if site in self.site_uses(infra_id):
            return
        try:
            with self.session() as s:
                s.add(SiteUseRow(infrastructure_id=infra_id, site=site))
        except IntegrityError:
            pass  # recorded meanwhile by a parallel node

    def site_uses(self, infra_id: str) -> list[str]:
        with self.session() as s:
            q = select(SiteUseRow.site).where(SiteUseRow.infrastructure_id == infra_id)
            return list(s.scalars(q.order_by(SiteUseRow.id)))

    # -- snapshots (images saved from node disks) ------------------------------------------
    def add_snapshot(self, infra_id: str, vm_id: int, disk: int, name: str, site: str | None,
                     url: str, auto_delete: bool) -> SnapshotRow:  # fmt: skip
        with self.session() as s:
            row = SnapshotRow(
                infrastructure_id=infra_id, vm_id=vm_id, disk=disk, name=name, site=site,
                url=url, auto_delete=auto_delete, deleted=False,
            )
            s.add(row)
        return row

    def snapshots(self, infra_id: str, *, include_deleted: bool = False) -> list[SnapshotRow]:
        with self.session() as s:
            q = select(SnapshotRow).where(SnapshotRow.infrastructure_id == infra_id)
            if not include_deleted:
                q = q.where(SnapshotRow.deleted.is_(False))
            return list(s.scalars(q.order_by(SnapshotRow.id)))

    def snapshot_deleted(self, snapshot_id: int) -> None:
        with self.session() as s:
            s.execute(update(SnapshotRow).where(SnapshotRow.id == snapshot_id).values(deleted=True))

    # -- functions (engine/functions.py) ---------------------------------------------------
    def functions(self, infra_id: str, *, include_deleted: bool = False) -> list[FunctionRow]:
        with self.session() as s:
            q = select(FunctionRow).where(FunctionRow.infrastructure_id == infra_id)
            if not include_deleted:
                q = q.where(FunctionRow.deleted.is_(False))
            return list(s.scalars(q.order_by(FunctionRow.name)))

    def save_function(self, infra_id: str, name: str, **fields: Any) -> None:
        """Create or change the record of one function (a deleted one comes back to life)."""
        with self.session() as s:
            row = s.scalars(select(FunctionRow).where(
                FunctionRow.infrastructure_id == infra_id, FunctionRow.name == name)).first()
            if row is None:
                s.add(FunctionRow(infrastructure_id=infra_id, name=name, **{
                    "backend": "oscar", "site": "", "service": "", "endpoint": "",
                    "digest": "", "state": "pending", "error": "", "deleted": False,
                    **fields}))
            else:
                for key, value in fields.items():
                    setattr(row, key, value)

    # -- owners, credentials, export and import (API, issue 4) -----------------------------
    def add_owners(
        self, infra_id: str, owners: list[tuple[str, str]], *, replace: bool = False
    ) -> None:
        """Record (key, name) owners; `replace` drops the previous ones (IM's overwrite)."""
        with self.session() as s:
            if replace:
                s.execute(delete(OwnerRow).where(OwnerRow.infrastructure_id == infra_id))
                s.flush()
                known: set[str] = set()
            else:
                known = set(
                    s.scalars(select(OwnerRow.key).where(OwnerRow.infrastructure_id == infra_id))
                )
            for key, name in owners:
                if key not in known:
                    known.add(key)
                    s.add(OwnerRow(infrastructure_id=infra_id, key=key, name=name))

    def owners(self, infra_id: str) -> list[OwnerRow]:
        with self.session() as s:
            q = select(OwnerRow).where(OwnerRow.infrastructure_id == infra_id)
            return list(s.scalars(q.order_by(OwnerRow.id)))

    def owner_keys(self, infra_id: str) -> frozenset[str]:
        with self.session() as s:
            q = select(OwnerRow.key).where(OwnerRow.infrastructure_id == infra_id)
            return frozenset(s.scalars(q))

    def ids_owned_by(
        self, keys: list[str] | None, *, with_templates: bool = True
    ) -> list[tuple[str, str]]:
        """(id, template) of live infrastructures one of `keys` owns; every one when None.
        Without `with_templates` the template is "" (the list route needs it only to filter)."""
        template = InfrastructureRow.template if with_templates else literal("")
        with self.session() as s:
            q = select(InfrastructureRow.id, template).where(InfrastructureRow.deleted.is_(False))
            if keys is not None:
                owned = select(OwnerRow.infrastructure_id).where(OwnerRow.key.in_(keys))
                q = q.where(InfrastructureRow.id.in_(owned))
            rows = s.execute(q.order_by(InfrastructureRow.created_at))
            return [(r[0], r[1]) for r in rows]

    def rows_for_stats(
        self, keys: list[str] | None, since: datetime, until: datetime | None
    ) -> list[tuple[InfrastructureRow, list[NodeRow]]]:
        """Infrastructures (deleted ones too) created in [since, until], with all their nodes."""
        with self.session() as s:
            q = select(InfrastructureRow).where(InfrastructureRow.created_at >= since)
            if until is not None:
                q = q.where(InfrastructureRow.created_at <= until)
            if keys is not None:
                owned = select(OwnerRow.infrastructure_id).where(OwnerRow.key.in_(keys))
                q = q.where(InfrastructureRow.id.in_(owned))
            rows = list(s.scalars(q.order_by(InfrastructureRow.created_at)))
            nodes: dict[str, list[NodeRow]] = {r.id: [] for r in rows}
            if rows:
                nq = select(NodeRow).where(NodeRow.infrastructure_id.in_(list(nodes)))
                for n in s.scalars(nq.order_by(NodeRow.vm_id)):
                    nodes[n.infrastructure_id].append(n)
            return [(r, nodes[r.id]) for r in rows]

    def set_credentials(self, infra_id: str, sealed: str) -> None:
        with self.session() as s:
            s.execute(
                update(InfrastructureRow)
                .where(InfrastructureRow.id == infra_id)
                .values(credentials=sealed)
            )

    def export_rows(
        self, infra_id: str
    ) -> tuple[InfrastructureRow, list[NodeRow], list[StepRow], list[FunctionRow]] | None:
        with self.session() as s:
            row = s.get(InfrastructureRow, infra_id)
            if row is None:
                return None
            nodes = s.scalars(select(NodeRow).where(NodeRow.infrastructure_id == infra_id))
            steps = s.scalars(select(StepRow).where(StepRow.infrastructure_id == infra_id))
            functions = s.scalars(select(FunctionRow).where(
                FunctionRow.infrastructure_id == infra_id, FunctionRow.deleted.is_(False)))
            return row, list(nodes), list(steps), list(functions)

    def import_rows(
        self,
        infra: dict[str, Any],
        nodes: list[dict[str, Any]],
        steps: list[dict[str, Any]],
        owners: list[tuple[str, str]],
        functions: list[dict[str, Any]] | None = None,
    ) -> None:
        """Insert an exported infrastructure under its own id; a deleted record with that id
        (an export with delete) is replaced."""
        with self.session() as s:
            old = s.get(InfrastructureRow, infra["id"])
            if old is not None:
                s.delete(old)
                s.flush()
            s.add(InfrastructureRow(**infra))
            s.flush()
            s.add_all(NodeRow(infrastructure_id=infra["id"], **n) for n in nodes)
            s.add_all(StepRow(infrastructure_id=infra["id"], **st) for st in steps)
            s.add_all(FunctionRow(infrastructure_id=infra["id"], **f) for f in functions or [])
            s.add_all(OwnerRow(infrastructure_id=infra["id"], key=k, name=n) for k, n in owners)
            s.add(
                EventRow(
                    infrastructure_id=infra["id"],
                    subject="infrastructure",
                    to_state=infra.get("phase", "done"),
                    message="imported",
                )
            )


# -- statements built once (see update_node) --------------------------------------------------
_NODE_KEY = (
    NodeRow.infrastructure_id == bindparam("_infra"),
    NodeRow.vm_id == bindparam("_vm"),
)
_NODE_NAME_STATE = select(NodeRow.name, NodeRow.state).where(*_NODE_KEY)
_INSERT_EVENT = insert(EventRow)


@functools.lru_cache(maxsize=64)
def _node_update(fields: tuple[str, ...], with_log: bool) -> Any:
    values: dict[str, Any] = {name: bindparam(name) for name in (*fields, "updated_at")}
    if with_log:
        values["log"] = NodeRow.log + bindparam("_log")
    return update(NodeRow).where(*_NODE_KEY).values(**values)
