"""IM-compatible routes: status codes, content types, and per-user isolation.

The cloud is a stand-in that holds no machines (the templates here deploy zero nodes), so these
tests exercise the API and service layers without containers; tests/e2e deploy for real.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from orbis import config
from orbis.api.app import create_app
from orbis.testing.app_clients import NoMachines

from .conftest import ALICE, BOB, YAML

EMPTY = """tosca_definitions_version: tosca_simple_yaml_1_0
metadata:
  infra_name: empty
topology_template:
  node_templates:
    front:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties:
            count: 0
  outputs:
    name:
      value: { get_attribute: [ front, tosca_name ] }
"""


@pytest.fixture
def provider() -> NoMachines:
    return NoMachines()


@pytest.fixture
def client(tmp_path, provider):
    settings = replace(config.load(), home=tmp_path, db_url=f"sqlite:///{tmp_path / 'db'}")
    with TestClient(create_app(settings, provider)) as c:
        yield c


def create(client: TestClient, auth: str = ALICE) -> str:
    answer = client.post("/infrastructures", content=EMPTY, headers={**YAML, "Authorization": auth})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/uri-list")
    infra_id = answer.text.rsplit("/", 1)[-1]
    assert answer.headers["InfID"] == infra_id
    assert answer.text == f"http://testserver/infrastructures/{infra_id}"
    return infra_id


def test_version_needs_no_auth(client):
    assert client.get("/version").text
    assert "version" in client.get("/version", headers={"Accept": "application/json"}).json()


def test_missing_or_bad_credentials(client):
    assert client.get("/infrastructures").status_code == 401
    bad = {"Authorization": "id = x; type = OpenStack; username = u; password = p"}
    assert client.get("/infrastructures", headers=bad).status_code == 401
    infra_id = create(client)
    # IM answers 400, not 401, on per-infrastructure routes
    assert client.get(f"/infrastructures/{infra_id}/state", headers=bad).status_code == 400


def test_users_see_only_their_own(client):
    mine = create(client, ALICE)
    theirs = create(client, BOB)
    listed = client.get("/infrastructures", headers={"Authorization": ALICE}).text
    assert mine in listed and theirs not in listed
    for path in ("", "/state", "/contmsg", "/outputs", "/tosca"):
        answer = client.get(f"/infrastructures/{theirs}{path}", headers={"Authorization": ALICE})
        assert answer.status_code == 403, path
    assert (
        client.delete(f"/infrastructures/{theirs}", headers={"Authorization": ALICE}).status_code
        == 403
    )
    # same user name, other password: another identity
    other = "type = InfrastructureManager; username = bob; password = guess"
    assert (
        client.get(f"/infrastructures/{theirs}/state", headers={"Authorization": other}).status_code
        == 403
    )


def test_state_outputs_and_json_wrapping(client, provider):
    infra_id = create(client)
    auth = {"Authorization": ALICE}
    state = client.get(f"/infrastructures/{infra_id}/state", headers=auth)
    assert state.headers["content-type"] == "application/json"
    assert state.json()["state"]["vm_states"] == {}
    assert client.get(f"/infrastructures/{infra_id}/outputs", headers=auth).json() == {
        "outputs": {"name": "front"}
    }
    contmsg = client.get(
        f"/infrastructures/{infra_id}/contmsg", headers={**auth, "Accept": "application/json"}
    ).json()
    assert "Deploying infrastructure" in contmsg["contmsg"]
    listed = client.get("/infrastructures", headers={**auth, "Accept": "application/json"}).json()
    assert {"uri": f"http://testserver/infrastructures/{infra_id}"} in listed["uri-list"]
    assert not any(call.startswith("prepare") for call in provider.calls)  # nothing to launch


def test_unknown_and_deleted(client, provider):
    auth = {"Authorization": ALICE}
    assert client.get("/infrastructures/nope/state", headers=auth).status_code == 404
    infra_id = create(client)
    assert client.get(f"/infrastructures/{infra_id}/nonsense", headers=auth).status_code == 404
    assert client.get(f"/infrastructures/{infra_id}/vms/7", headers=auth).status_code == 404
    assert client.delete(f"/infrastructures/{infra_id}", headers=auth).status_code == 200
    assert f"cleanup {infra_id}" in provider.calls
    gone = client.get(f"/infrastructures/{infra_id}/state", headers=auth)
    assert gone.status_code == 404 and "Deleted infrastructure" in gone.text


def test_errors_follow_accept(client):
    answer = client.get(
        "/infrastructures/nope/state",
        headers={"Authorization": ALICE, "Accept": "application/json"},
    )
    assert answer.json() == {
        "message": "Invalid infrastructure ID or access not granted.",
        "code": 404,
    }


def test_bad_template_answers_400_with_position(client):
    broken = EMPTY.replace("tosca.nodes.Compute", "tosca.nodes.Compte")
    answer = client.post(
        "/infrastructures",
        content=broken,
        headers={**YAML, "Authorization": ALICE, "X-Orbis-Template-Name": "mine.yaml"},
    )
    assert answer.status_code == 400
    assert "mine.yaml:7:13" in answer.text and "tosca.nodes.Compute" in answer.text


def test_unsupported_media_types(client):
    auth = {"Authorization": ALICE}
    answer = client.post(
        "/infrastructures", content=EMPTY, headers={**auth, "Content-Type": "image/png"}
    )
    assert answer.status_code == 415
    infra_id = create(client)
    answer = client.get(
        f"/infrastructures/{infra_id}/state", headers={**auth, "Accept": "text/plain"}
    )
    assert answer.status_code == 415


def test_bad_boolean_flag(client):
    answer = client.post(
        "/infrastructures?async=maybe", content=EMPTY, headers={**YAML, "Authorization": ALICE}
    )
    assert answer.status_code == 400 and "async" in answer.text


def test_an_infrastructure_made_from_radl_is_not_tosca(client):
    radl = "network public (outbound = 'yes')\nsystem front (\ncpu.count >= 1\n)\n"
    answer = client.post(
        "/infrastructures",
        content=radl,
        headers={"Content-Type": "text/plain", "Authorization": ALICE},
    )
    assert answer.status_code == 200, answer.text
    infra_id = answer.text.rsplit("/", 1)[-1]
    auth = {"Authorization": ALICE}
    assert client.get(f"/infrastructures/{infra_id}/outputs", headers=auth).status_code == 403
    assert client.get(f"/infrastructures/{infra_id}/tosca", headers=auth).status_code == 403
    assert "system front" in client.get(f"/infrastructures/{infra_id}/radl", headers=auth).text
