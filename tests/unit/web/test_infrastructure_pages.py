"""Infrastructure pages: the same identity as the API, one user never sees another's, the
live stream, and destroy behind its confirmation."""

from __future__ import annotations

import re

from .conftest import ALICE, EMPTY, login

YAML = {"Content-Type": "text/yaml", "Authorization": ALICE}


def make_infra(client) -> str:
    answer = client.post("/infrastructures", content=EMPTY, headers=YAML)
    assert answer.status_code == 200, answer.text
    return answer.text.rsplit("/", 1)[-1]


def rows(html: str) -> list[str]:
    return re.findall(r'data-testid="infra-row" data-id="([^"]+)"', html)


def test_the_api_users_infrastructures_are_listed_with_their_state(client):
    infra_id = make_infra(client)
    login(client)
    page = client.get("/ui/infrastructures").text
    assert rows(page) == [infra_id]
    assert re.search(r'data-testid="infra-state">(\w+)<', page)


def test_another_user_sees_nothing_of_it(make_client):
    alice = make_client()
    infra_id = make_infra(alice)
    bob = make_client()
    token = login(bob, "bob", "b1")
    assert rows(bob.get("/ui/infrastructures").text) == []
    for path in ("", "/nodes", "/outputs", "/stream", "/key", "/nodes/0/log"):
        answer = bob.get(f"/ui/infrastructures/{infra_id}{path}")
        assert answer.status_code in (403, 404), path
        assert "BEGIN" not in answer.text
    answer = bob.post(f"/ui/infrastructures/{infra_id}/destroy",
                      data={"csrf": token, "confirm": "yes"})  # fmt: skip
    assert answer.status_code in (403, 404)
    # alice with another password is another identity too (IM's rule)
    other = make_client()
    login(other, "alice", "not-a1")
    assert rows(other.get("/ui/infrastructures").text) == []


def test_the_page_follows_the_stream_and_destroy_needs_the_confirmation(client):
    infra_id = make_infra(client)
    token = login(client)
    page = client.get(f"/ui/infrastructures/{infra_id}").text
    assert f'data-stream="/ui/infrastructures/{infra_id}/stream"' in page
    assert 'data-testid="destroy"' in page and 'data-name="greeting"' in page
    with client.stream("GET", f"/ui/infrastructures/{infra_id}/stream") as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        first = next(answer.iter_lines())
        assert first == "event: detail"
    answer = client.post(f"/ui/infrastructures/{infra_id}/destroy", data={"csrf": token})
    assert answer.status_code == 400 and "confirmation" in answer.text
    answer = client.post(f"/ui/infrastructures/{infra_id}/destroy",
                         data={"csrf": token, "confirm": "yes"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/infrastructures"


def test_an_unknown_action_or_bad_count_is_a_clear_error(client):
    infra_id = make_infra(client)
    token = login(client)
    answer = client.post(f"/ui/infrastructures/{infra_id}/action", data={"csrf": token, "op": "x"})
    assert answer.status_code == 400 and "Unknown action" in answer.text
    answer = client.post(f"/ui/infrastructures/{infra_id}/scale",
                         data={"csrf": token, "node": "front", "count": "many"})
    assert answer.status_code == 400 and "whole number" in answer.text
    answer = client.get("/ui/infrastructures/..%2f..%2fetc")
    assert answer.status_code == 404


def test_reconfigure_and_power_actions_reach_the_service(client):
    infra_id = make_infra(client)
    token = login(client)
    before = client.get(f"/orbis/infrastructures/{infra_id}", headers=YAML).json()
    for op in ("reconfigure", "stop", "start"):
        answer = client.post(f"/ui/infrastructures/{infra_id}/action",
                             data={"csrf": token, "op": op}, follow_redirects=False)
        assert answer.status_code == 303, (op, answer.text)
        assert answer.headers["location"] == f"/ui/infrastructures/{infra_id}"
    after = client.get(f"/orbis/infrastructures/{infra_id}", headers=YAML).json()
    assert after["generation"] > before["generation"]  # each asked the engine for a change
    answer = client.post(f"/ui/infrastructures/{infra_id}/action",
                         data={"csrf": token, "op": "stop", "vm": "7"})
    assert answer.status_code == 404 and "Invalid VM ID" in answer.text
