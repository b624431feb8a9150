"""GET /orbis/sites: the caller's sites with what each offers; secrets never shown."""

from __future__ import annotations

import pytest

from .conftest import ALICE, EMPTY

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


def test_an_openstack_sites_catalogue_through_im_and_orbis_routes(client):
    from orbis.testing.standins.openstack import OpenStackStandin

    with OpenStackStandin(quota={"instances": 7}) as cloud:
        line = "; ".join(f"{k} = {v}" for k, v in cloud.auth_line().items())
        auth = {"Authorization": f"{ALICE}\\n{line}", "Accept": "application/json"}
        images = client.get("/clouds/standin/images", headers=auth)
        assert images.status_code == 200, images.text
        uris = {i["name"]: i["uri"] for i in images.json()["images"]}
        assert uris["Ubuntu 22.04"].startswith("ost://127.0.0.1/")
        ubuntu = client.get("/clouds/standin/images?filters=distribution=ubuntu", headers=auth)
        assert [i["name"] for i in ubuntu.json()["images"]] == ["Ubuntu 22.04"]
        quotas = client.get("/clouds/standin/quotas", headers=auth).json()["quotas"]
        assert quotas["instances"] == {"used": 0, "limit": 7}
        (site,) = client.get("/orbis/sites", headers=auth).json()["sites"]
        assert site["error"] is None and "m1.small" in {f["name"] for f in site["flavors"]}
        assert cloud.auth_line()["password"] not in client.get("/orbis/sites", headers=auth).text
        bad = "; ".join(f"{k} = {v}" for k, v in cloud.auth_line(password="Wr0ng-Pw-917").items())
        refused = client.get("/clouds/standin/quotas",
                             headers={**auth, "Authorization": f"{ALICE}\\n{bad}"})  # fmt: skip
        assert refused.status_code == 400 and "Wr0ng-Pw-917" not in refused.text


def test_stats_name_the_cloud_of_the_first_vm_and_hybrid_use(client, tmp_path):
    import time

    from orbis.providers.sim import SimSite

    client.app.state.service.sites.classes["simcloud"] = SimSite
    auth = (f"{ALICE}\\nid = one; type = SimCloud; host = https://one.example:5000; "
            f"path = {tmp_path / 'one.db'}")  # fmt: skip
    headers = {"Authorization": auth, "Content-Type": "text/yaml"}
    template = EMPTY.replace("count: 0", "count: 1")
    answer = client.post("/infrastructures", content=template, headers=headers)
    assert answer.status_code == 200, answer.text
    infra = answer.text.rsplit("/", 1)[-1]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = client.get(f"/infrastructures/{infra}/state", headers={
            "Authorization": auth, "Accept": "application/json"}).json()["state"]["state"]
        if state == "configured":
            break
        time.sleep(0.1)
    stats = client.get("/stats", headers={"Authorization": auth, "Accept": "application/json"})
    (row,) = stats.json()["stats"]
    assert (row["cloud_type"], row["cloud_host"], row["hybrid"]) == (
        "SimCloud", "one.example", False)
