"""The cached fast path for `GET /infrastructures` and `GET /infrastructures/{id}/state`
(orbis.api.hot): same answers as the full stack, and never stale once a change is committed,
whoever commits it (this process's service, or another connection such as another process)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from orbis import config
from orbis.api.app import create_app
from orbis.api.hot import HotReads
from orbis.store.repository import Store
from orbis.testing.app_clients import NoMachines

from .conftest import ALICE, BOB, create

AUTH = {"Authorization": ALICE}


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'db'}"


@pytest.fixture
def client(tmp_path, db_url):
    settings = replace(config.load(), home=tmp_path, db_url=db_url)
    with TestClient(create_app(settings, NoMachines())) as c:
        yield c


@pytest.fixture
def other(db_url, client) -> Store:
    """Another connection to the same database, as the engine in another process would be."""
    store = Store(db_url, run_migrations=False)
    yield store
    store.engine.dispose()


def hot(client: TestClient) -> HotReads:
    layer = client.app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(layer, HotReads):
        layer = layer.app
    return layer


def add_node(store: Store, infra_id: str, state: str) -> int:
    (vm_id,) = store.add_nodes(infra_id, ["front"])
    store.update_node(infra_id, vm_id, state=state)
    return vm_id


def test_answers_are_the_full_stacks(client, other):
    """The same bytes and headers as the routes (a query string takes the ordinary way)."""
    infra_id = create(client)
    add_node(other, infra_id, "running")
    for path in ("/infrastructures", f"/infrastructures/{infra_id}/state"):
        for accept in ({}, {"Accept": "application/json"}, {"Accept": "text/*"}):
            fast = client.get(path, headers={**AUTH, **accept})
            full = client.get(path, params={"unused": "1"}, headers={**AUTH, **accept})
            assert fast.status_code == full.status_code == 200
            assert fast.content == full.content
            assert fast.headers == full.headers
    assert hot(client).cache  # those were cached ...
    again = client.get(f"/infrastructures/{infra_id}/state", headers=AUTH)
    assert again.json()["state"]["vm_states"] == {"0": "running"}  # ... and answered from it


def test_state_follows_committed_node_changes(client, other):
    infra_id = create(client)
    vm_id = add_node(other, infra_id, "running")
    path = f"/infrastructures/{infra_id}/state"
    assert client.get(path, headers=AUTH).json()["state"]["vm_states"] == {"0": "running"}
    other.update_node(infra_id, vm_id, state="configured")
    assert client.get(path, headers=AUTH).json()["state"] == {
        "state": "configured", "vm_states": {"0": "configured"}
    }  # fmt: skip
    other.update_node(infra_id, vm_id, state="failed")
    assert client.get(path, headers=AUTH).json()["state"]["state"] == "failed"


def test_list_follows_creation_deletion_and_owners(client, other):
    first = create(client)
    assert client.get("/infrastructures", headers=AUTH).text.split() == [
        f"http://testserver/infrastructures/{first}"
    ]
    second = create(client)
    assert client.get("/infrastructures", headers=AUTH).text.split()[-1].endswith(second)
    # bob sees nothing until alice's infrastructure gets him as owner (committed elsewhere)
    assert client.get("/infrastructures", headers={"Authorization": BOB}).text == ""
    bob = client.app.state.authenticator.line_identity({"username": "bob", "password": "b1"})[0]
    other.add_owners(first, [(bob, "bob")])
    assert client.get("/infrastructures", headers={"Authorization": BOB}).text.endswith(first)
    assert client.get(f"/infrastructures/{first}/state", headers={"Authorization": BOB}).is_success
    assert client.delete(f"/infrastructures/{second}", headers=AUTH).status_code == 200
    assert second not in client.get("/infrastructures", headers=AUTH).text


def test_the_list_names_the_host_the_client_used(client):
    infra_id = create(client)
    assert client.get("/infrastructures", headers=AUTH).text.startswith("http://testserver/")
    moved = client.get("/infrastructures", headers={**AUTH, "Host": "orbis.example:9"})
    assert moved.text == f"http://orbis.example:9/infrastructures/{infra_id}"


def test_errors_and_other_callers_are_not_served_from_the_cache(client):
    infra_id = create(client)
    path = f"/infrastructures/{infra_id}/state"
    assert client.get(path, headers=AUTH).status_code == 200
    assert client.get(path, headers={"Authorization": BOB}).status_code == 403
    assert client.get(path, headers={**AUTH, "Accept": "text/html"}).status_code == 415
    assert client.get("/infrastructures", headers={"Authorization": "nonsense"}).status_code == 401
    assert client.get(path).status_code == 401
    missing = client.get("/infrastructures/nope/state", headers=AUTH)
    assert missing.status_code == 404 and "Invalid infrastructure ID" in missing.text
    assert all(key[1] == ALICE for key in hot(client).cache)


def test_change_marker(db_url, client, other, tmp_path):
    store = Store(db_url, run_migrations=False)
    try:
        before = store.change_marker()
        assert before is not None and store.change_marker() == before  # reads change nothing
        other.add_nodes(create(client), ["front"])
        assert store.change_marker() != before
    finally:
        store.engine.dispose()
    assert Store("sqlite://").change_marker() is None  # in memory: no marker, no caching
