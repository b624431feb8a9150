"""Reads and writes for node quotas: an identity's live nodes and its administrator-set limits."""

from __future__ import annotations

from sqlalchemy import func, select

from orbis.store.repository import Store
from orbis.store.schema import InfrastructureRow, NodeRow, UserQuotaRow


def live_nodes(store: Store, owner_key: str, *, besides: str | None = None) -> int:
    """Nodes wanted (not removed, not asked to go) in the live infrastructures `owner_key`
    created, leaving out infrastructure `besides`."""
    with store.session() as s:
        q = (
            select(func.count(NodeRow.id))
            .join(InfrastructureRow, InfrastructureRow.id == NodeRow.infrastructure_id)
            .where(
                InfrastructureRow.owner_key == owner_key,
                InfrastructureRow.deleted.is_(False),
                InfrastructureRow.desired != "absent",
                NodeRow.deleted.is_(False),
                NodeRow.desired != "absent",
            )
        )
        if besides is not None:
            q = q.where(InfrastructureRow.id != besides)
        return int(s.scalar(q) or 0)


def user_quota(store: Store, owner_key: str) -> UserQuotaRow | None:
    with store.session() as s:
        return s.get(UserQuotaRow, owner_key)


def set_user_quota(
    store: Store, owner_key: str, name: str, per_infra: int | None, per_user: int | None
) -> None:
    """Record (or, with both None, remove) an identity's own quotas."""
    with store.session() as s:
        row = s.get(UserQuotaRow, owner_key)
        if per_infra is None and per_user is None:
            if row is not None:
                s.delete(row)
            return
        if row is None:
            row = UserQuotaRow(key=owner_key)
            s.add(row)
        row.name = name or row.name or ""
        row.max_nodes_per_infra, row.max_nodes_per_user = per_infra, per_user


def identities(store: Store) -> dict[str, tuple[str, int]]:
    """{owner key: (name, live nodes)} of every identity with a live infrastructure or a
    quota of its own (what an administrator picks from)."""
    found: dict[str, tuple[str, int]] = {}
    with store.session() as s:
        creators = s.execute(
            select(InfrastructureRow.owner_key, InfrastructureRow.owner_name)
            .where(InfrastructureRow.deleted.is_(False))
            .distinct()
        )
        named = {key: name for key, name in creators}
        named |= {row.key: row.name for row in s.scalars(select(UserQuotaRow))}
    for key, name in named.items():
        found[key] = (name, live_nodes(store, key))
    return found
