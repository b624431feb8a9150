"""Stored cloud credentials: sealed at rest, never shown back in full, kept when edited with an
empty secret, the user's own only, tested against the cloud with a clear message, and used as
the auth line of a plan or deploy."""

from __future__ import annotations

import re
import sqlite3

from .conftest import login

SECRET = "very-secret-password-42"


def add(client, token, **fields):
    data = {"csrf": token, "label": "mycloud", "type": "OpenStack",
            "host": "https://keystone.example:5000", "username": "u1", "password": SECRET,
            "tenant": "proj", **fields}  # fmt: skip
    return client.post("/ui/credentials", data=data)


def ids(html: str) -> list[str]:
    return re.findall(r'data-testid="credential-row" data-id="(\d+)"', html)


def test_credentials_are_sealed_and_never_shown_back_in_full(client, tmp_path):
    token = login(client)
    page = add(client, token)
    assert page.status_code == 200, page.text
    assert len(ids(page.text)) == 1
    assert SECRET not in page.text and "••••42" in page.text and "u1" in page.text
    edit = client.get(f"/ui/credentials?edit={ids(page.text)[0]}").text
    assert SECRET not in edit and 'value="u1"' in edit
    with sqlite3.connect(tmp_path / "db") as db:
        (sealed, hint), = db.execute("SELECT sealed, hint FROM user_credentials").fetchall()
    assert SECRET not in sealed and SECRET not in hint and "proj" not in sealed


def test_an_empty_secret_keeps_the_stored_one_when_editing(client):
    token = login(client)
    cred = ids(add(client, token).text)[0]
    client.post("/ui/credentials", data={"csrf": token, "credential_id": cred, "label": "mycloud",
                                         "type": "OpenStack", "host": "https://other:5000",
                                         "username": "u2", "password": "", "tenant": "proj"})
    page = client.get("/ui/credentials").text
    assert "https://other:5000" in page and "u2" in page and "••••42" in page
    assert ids(page) == [cred]


def test_missing_fields_and_bad_names_are_clear_errors(client):
    token = login(client)
    answer = add(client, token, password="")
    assert answer.status_code == 400 and "Password / secret key is required" in answer.text
    answer = add(client, token, label="no spaces please")
    assert answer.status_code == 400 and "The name is 1-64 letters" in answer.text
    add(client, token)
    answer = add(client, token)
    assert answer.status_code == 400 and "already have credentials named" in answer.text


def test_another_user_cannot_see_use_or_delete_them(make_client):
    alice = make_client()
    cred = ids(add(alice, login(alice)).text)[0]
    bob = make_client()
    token = login(bob, "bob", "b1")
    assert ids(bob.get("/ui/credentials").text) == []
    assert bob.get(f"/ui/credentials?edit={cred}").status_code == 404
    assert bob.post(f"/ui/credentials/{cred}/delete", data={"csrf": token}).status_code == 404
    assert bob.post(f"/ui/credentials/{cred}/test", data={"csrf": token}).status_code == 404
    answer = bob.post("/ui/custom", data={"csrf": token, "credential": cred,
                                          "template": "tosca_definitions_version: x"})
    assert answer.status_code == 404
    assert len(ids(alice.get("/ui/credentials").text)) == 1


def test_testing_credentials_of_an_unreachable_cloud_says_why(client):
    token = login(client)
    cred = ids(add(client, token, host="http://127.0.0.1:9/v3").text)[0]
    answer = client.post(f"/ui/credentials/{cred}/test", data={"csrf": token})
    assert answer.status_code == 502
    message = re.search(r'data-testid="credential-test">\s*(.*?)</p>', answer.text, re.S).group(1)
    assert "failed" in message and "mycloud" in message
    assert "Traceback" not in answer.text and SECRET not in answer.text


def test_deleting(client):
    token = login(client)
    cred = ids(add(client, token).text)[0]
    answer = client.post(f"/ui/credentials/{cred}/delete", data={"csrf": token})
    assert ids(answer.text) == []
