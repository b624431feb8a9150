"""GET /orbis/sites: the caller's sites with what each offers; secrets never shown."""

from __future__ import annotations

import pytest

from .conftest import ALICE

SECRET = "Sup3r-S3cret-pw"


@pytest.fixture
def client(make_client):
    return make_client()


def test_without_cloud_lines_the_local_back_end_is_the_site(client):
    answer = client.get("/orbis/sites", headers={"Authorization": ALICE})
    assert answer.status_code == 200
    (site,) = answer.json()["sites"]
    assert (site["id"], site["type"], site["error"]) == ("local", "Local", None)


def test_each_line_is_a_site_and_an_unusable_one_says_why(client):
    auth = (f"{ALICE}\\nid = here; type = Local\\n"
            f"id = one; type = OpenNebula; host = one.example; username = u; password = {SECRET}")
    answer = client.get("/orbis/sites", headers={"Authorization": auth})
    assert answer.status_code == 200
    sites = {s["id"]: s for s in answer.json()["sites"]}
    assert list(sites) == ["here", "one"]
    assert "not supported" in sites["one"]["error"]
    assert SECRET not in answer.text
    only = client.get("/orbis/sites?site=one", headers={"Authorization": auth}).json()["sites"]
    assert [s["id"] for s in only] == ["one"]
    assert client.get("/orbis/sites?site=nope", headers={"Authorization": auth}).status_code == 400


def test_sites_need_credentials(client):
    assert client.get("/orbis/sites").status_code == 401
