"""What the database keeps of secrets: SSH private keys only sealed (also rows written before
sealing, sealed at start), and owner keys as an HMAC keyed with the server secret (old unsalted
ones replaced at their owner's next request). The raw SQLite files are read, as a thief would."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from orbis import config
from orbis.api.app import create_app
from orbis.configure.ssh import generate_key_pair
from orbis.store.repository import Store
from orbis.store.schema import InfrastructureRow, OwnerRow
from orbis.testing.app_clients import NoMachines

from .conftest import ALICE, EMPTY, YAML, create

AUTH = {"Authorization": ALICE}


def app_client(home: Path, secret: str) -> TestClient:
    settings = replace(
        config.load(), home=home, db_url=f"sqlite:///{home / 'orbis.db'}", secret_key=secret
    )
    return TestClient(create_app(settings, NoMachines()))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with app_client(tmp_path, "first server secret") as c:
        yield c


def raw_database(home: Path) -> bytes:
    """Every byte SQLite wrote (the database and its journal files)."""
    return b"".join(p.read_bytes() for p in sorted(home.glob("orbis.db*")))


def exported_key(client: TestClient, infra_id: str) -> str:
    answer = client.get(f"/infrastructures/{infra_id}/data", headers=AUTH)
    assert answer.status_code == 200, answer.text
    data = json.loads(answer.json()["data"])
    return str(data["infrastructure"]["ssh_private_key"])


def key_body(private_key: str) -> list[bytes]:
    """The base64 lines of a key: none may be in the file, not just its header."""
    return [line.encode() for line in private_key.splitlines() if "-----" not in line and line]


def test_private_key_is_sealed_in_the_database_file(client: TestClient, tmp_path: Path) -> None:
    infra_id = create(client)
    private = exported_key(client, infra_id)  # the owner still gets it, as from IM
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    raw = raw_database(tmp_path)
    assert infra_id.encode() in raw  # the file read is the one written
    assert b"PRIVATE KEY" not in raw
    assert not any(line in raw for line in key_body(private))


def test_keys_stored_plain_before_are_sealed_at_start(tmp_path: Path) -> None:
    private, public = generate_key_pair()
    old = Store(f"sqlite:///{tmp_path / 'orbis.db'}")
    with app_client(tmp_path, "s") as client:  # an owner, made the current way
        infra_id = create(client)
    with old.session() as s:  # as a server before sealing wrote it
        s.execute(
            update(InfrastructureRow)
            .where(InfrastructureRow.id == infra_id)
            .values(ssh_private_key=private)
        )
    old.engine.dispose()
    assert b"PRIVATE KEY" in raw_database(tmp_path)
    with app_client(tmp_path, "s") as client:
        assert exported_key(client, infra_id) == private
    assert b"PRIVATE KEY" not in raw_database(tmp_path)


def _only_in_free_pages(home: Path) -> bool:
    """SQLite may keep the old bytes in a free page until VACUUM: the row itself is sealed."""
    store = Store(f"sqlite:///{home / 'orbis.db'}", run_migrations=False)
    with store.session() as s:
        keys = list(s.scalars(select(InfrastructureRow.ssh_private_key)))
    store.engine.dispose()
    return all(k.startswith("sealed:") for k in keys)


def owner_keys(home: Path) -> list[str]:
    store = Store(f"sqlite:///{home / 'orbis.db'}", run_migrations=False)
    with store.session() as s:
        keys = list(s.scalars(select(OwnerRow.key)))
    store.engine.dispose()
    return keys


def test_owner_key_is_an_hmac_keyed_with_the_server_secret(tmp_path: Path) -> None:
    unsalted = hashlib.sha256(b"alice\x00a1").hexdigest()
    keys = {}
    for secret in ("first server secret", "second server secret"):
        home = tmp_path / secret.split()[0]
        with app_client(home, secret) as client:
            create(client)
        (keys[secret],) = owner_keys(home)
        assert keys[secret] != unsalted
        assert unsalted.encode() not in raw_database(home)
    assert keys["first server secret"] != keys["second server secret"]


def test_unsalted_owner_key_is_replaced_at_the_owners_next_request(tmp_path: Path) -> None:
    unsalted = hashlib.sha256(b"alice\x00a1").hexdigest()
    with app_client(tmp_path, "s") as client:
        infra_id = create(client)
    store = Store(f"sqlite:///{tmp_path / 'orbis.db'}", run_migrations=False)
    with store.session() as s:  # as migration 0303 leaves a row written before it
        s.execute(update(OwnerRow).values(key=unsalted, legacy=True))
        s.execute(update(InfrastructureRow).values(owner_key=unsalted))
    store.engine.dispose()
    with app_client(tmp_path, "s") as client:
        wrong = "id = im; type = InfrastructureManager; username = alice; password = nope"
        assert client.get("/infrastructures", headers={"Authorization": wrong}).text == ""
        assert owner_keys(tmp_path) == [unsalted]
        listed = client.get("/infrastructures", headers=AUTH).text
        assert listed.endswith(infra_id)
        (upgraded,) = owner_keys(tmp_path)
        assert upgraded != unsalted
        assert unsalted.encode() not in raw_database(tmp_path)
        # a new infrastructure of the same owner gets the same (new) key
        client.post("/infrastructures", content=EMPTY, headers={**AUTH, **YAML})
        assert set(owner_keys(tmp_path)) == {upgraded}


def _owner_rows_upgraded(home: Path) -> bool:
    store = Store(f"sqlite:///{home / 'orbis.db'}", run_migrations=False)
    with store.session() as s:
        legacy = list(s.scalars(select(OwnerRow.key).where(OwnerRow.legacy.is_(True))))
    store.engine.dispose()
    return legacy == []
