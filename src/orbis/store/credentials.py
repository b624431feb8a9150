"""Reads and writes of the cloud credentials dashboard users store, always by owner key: a
user reaches only their own rows."""

from __future__ import annotations

from sqlalchemy import delete, select

from orbis.store.repository import Store
from orbis.store.schema import UserCredentialRow

MAX_PER_USER = 50


class CredentialConflict(Exception):
    """Another credential of this user has the label, or the user has too many."""


def list_for(store: Store, owner_key: str) -> list[UserCredentialRow]:
    with store.session() as s:
        rows = s.scalars(select(UserCredentialRow).where(UserCredentialRow.owner_key == owner_key)
                         .order_by(UserCredentialRow.label))  # fmt: skip
        return list(rows)


def get_for(store: Store, owner_key: str, credential_id: int) -> UserCredentialRow | None:
    with store.session() as s:
        row = s.get(UserCredentialRow, credential_id)
        return row if row is not None and row.owner_key == owner_key else None


def save(store: Store, owner_key: str, label: str, kind: str, sealed: str, hint: str,
         credential_id: int | None = None) -> int:  # fmt: skip
    """Add (no id) or replace one of the owner's credentials; its id."""
    with store.session() as s:
        clash = s.scalar(select(UserCredentialRow.id).where(
            UserCredentialRow.owner_key == owner_key, UserCredentialRow.label == label))
        if clash is not None and clash != credential_id:
            raise CredentialConflict(f"You already have credentials named {label!r}")
        if credential_id is None:
            count = len(list(s.scalars(select(UserCredentialRow.id).where(
                UserCredentialRow.owner_key == owner_key))))
            if count >= MAX_PER_USER:
                raise CredentialConflict(f"At most {MAX_PER_USER} credentials per user")
            row = UserCredentialRow(owner_key=owner_key)
            s.add(row)
        else:
            found = s.get(UserCredentialRow, credential_id)
            if found is None or found.owner_key != owner_key:
                raise CredentialConflict("No such credentials")
            row = found
        row.label, row.type, row.sealed, row.hint = label, kind, sealed, hint
        s.flush()
        return int(row.id)


def remove(store: Store, owner_key: str, credential_id: int) -> bool:
    with store.session() as s:
        done = s.execute(delete(UserCredentialRow).where(
            UserCredentialRow.id == credential_id, UserCredentialRow.owner_key == owner_key))
        return bool(done.rowcount)  # type: ignore[attr-defined]
