"""Rows written before secrets were protected, brought up to date: plain SSH private keys are
sealed at start, and owner keys of the old unsalted form are replaced at their owner's next
request (the old value cannot be recomputed without the password, so no migration can)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import delete, select, text, update

from orbis.secrets import SEALED_PREFIX
from orbis.store.repository import Store
from orbis.store.schema import InfrastructureRow, OwnerRow


def seal_plain_private_keys(store: Store, seal: Callable[[str], str]) -> int:
    """Seal every SSH private key still stored plain; the number sealed."""
    plain = (InfrastructureRow.ssh_private_key != "") & ~InfrastructureRow.ssh_private_key.like(
        f"{SEALED_PREFIX}%"
    )
    with store.session() as s:
        rows = s.execute(
            select(InfrastructureRow.id, InfrastructureRow.ssh_private_key).where(plain)
        )
        done = 0
        for infra_id, key in rows.all():
            s.execute(
                update(InfrastructureRow)
                .where(InfrastructureRow.id == infra_id, plain)  # not sealed meanwhile
                .values(ssh_private_key=seal(key))
            )
            done += 1
    if done:
        drop_old_pages(store)
    return done


def drop_old_pages(store: Store) -> None:
    """SQLite's write-ahead log keeps the pages a change replaced until it is checkpointed, and
    its file keeps them after: move it into the database and truncate it. Best effort: a reader
    still open may delay it."""
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


def has_legacy_owner_keys(store: Store) -> bool:
    with store.session() as s:
        return s.scalar(select(OwnerRow.id).where(OwnerRow.legacy.is_(True)).limit(1)) is not None


def upgrade_owner_keys(store: Store, legacy_to_new: Mapping[str, str]) -> int:
    """Replace old-form owner keys by the new ones of the same identities (the caller just
    proved it knows the password); the number of owner entries upgraded."""
    done = 0
    with store.session() as s:
        for old, new in legacy_to_new.items():
            # an infrastructure that has both forms already: the old entry just goes
            both = list(s.scalars(select(OwnerRow.infrastructure_id).where(OwnerRow.key == new)))
            s.execute(
                delete(OwnerRow).where(
                    OwnerRow.key == old, OwnerRow.legacy.is_(True),
                    OwnerRow.infrastructure_id.in_(both),
                )
            )  # fmt: skip
            result = s.execute(
                update(OwnerRow)
                .where(OwnerRow.key == old, OwnerRow.legacy.is_(True))
                .values(key=new, legacy=False)
            )
            done += result.rowcount or 0  # type: ignore[attr-defined]
            s.execute(
                update(InfrastructureRow)
                .where(InfrastructureRow.owner_key == old)
                .values(owner_key=new)
            )
    if done:
        drop_old_pages(store)
    return done
