"""OIDC sign-in on the dashboard: authorization code + PKCE (S256) against a local provider;
the session is the same identity as the API's bearer token; a forged or stale state is refused."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from .conftest import EMPTY
from .oidc_provider import Provider


@pytest.fixture
def provider():
    with Provider() as found:
        yield found


@pytest.fixture
def client(make_client, provider):
    return make_client(oidc_issuers=(provider.url,), oidc_client_id="orbis-dashboard")


def start(client) -> str:
    """The provider's answer to the authorization request: the callback path and query."""
    page = client.get("/ui/login").text
    assert "Sign in with 127.0.0.1:" in page
    answer = client.get("/ui/login/oidc?issuer=0&next=/ui/infrastructures",
                        follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303
    back = httpx.get(answer.headers["location"], follow_redirects=False)
    assert back.status_code == 302
    url = urlsplit(back.headers["location"])
    assert url.path == "/ui/login/oidc/callback"
    return f"{url.path}?{url.query}"


def test_sign_in_with_code_and_pkce_gives_the_api_identity(client, provider):
    callback = start(client)
    asked = provider.authorize_requests[-1]
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["client_id"] == "orbis-dashboard" and "openid" in asked["scope"]
    answer = client.get(callback, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/infrastructures"
    sent = provider.token_requests[-1]
    assert sent["grant_type"] == "authorization_code" and 43 <= len(sent["code_verifier"]) <= 128
    # the same identity as the API's bearer token
    created = client.post("/infrastructures", content=EMPTY, headers={
        "Content-Type": "text/yaml", "Authorization": f"Bearer {provider.token()}"})
    assert created.status_code == 200, created.text
    infra_id = created.text.rsplit("/", 1)[-1]
    page = client.get("/ui/infrastructures").text
    assert re.findall(r'data-testid="infra-row" data-id="([^"]+)"', page) == [infra_id]
    assert "alice.oidc" in page


def test_a_forged_state_or_a_replayed_code_is_refused(client):
    callback = start(client)
    query = parse_qs(urlsplit(callback).query)
    forged = f"/ui/login/oidc/callback?code={query['code'][0]}&state=forged"
    answer = client.get(forged)
    assert answer.status_code == 400 and "could not be completed" in answer.text
    assert client.get("/ui/", follow_redirects=False).status_code == 303
    client.cookies.clear()  # no flow cookie: a code alone signs no one in
    answer = client.get(callback)
    assert answer.status_code == 400


def test_the_issuer_refusing_is_a_message(client, provider):
    callback = start(client)
    provider.codes.clear()  # the code is no longer valid at the issuer
    answer = client.get(callback)
    assert answer.status_code == 502 and "code or PKCE verifier not valid" in answer.text


def test_no_oidc_button_without_a_client_id(make_client, provider):
    client = make_client(oidc_issuers=(provider.url,))
    assert "Sign in with" not in client.get("/ui/login").text.replace("Sign in</", "")
    assert client.get("/ui/login/oidc?issuer=0").status_code == 400


def test_templates_for_a_vo_are_offered_only_to_its_members(make_client, provider, tmp_path):
    cat = tmp_path / "vo-cat"
    cat.mkdir()
    card = "tosca_definitions_version: tosca_simple_yaml_1_0\nmetadata: {display_name: %s%s}\n" \
        "topology_template: {}\n"  # fmt: skip
    (cat / "open.yaml").write_text(card % ("Open", ""))
    (cat / "vo.yaml").write_text(card % ("Members only", ", vos: [vo.example.eu]"))
    (cat / "other.yaml").write_text(card % ("Others only", ", vos: [vo.other.eu]"))
    provider.extra = {"eduperson_entitlement": [
        "urn:mace:egi.eu:group:vo.example.eu:role=member#aai.egi.eu"]}
    client = make_client(oidc_issuers=(provider.url,), oidc_client_id="orbis-dashboard",
                         catalogue_dir=cat)  # fmt: skip
    client.get(start(client))
    ids = re.findall(r'data-testid="catalogue-card" data-id="([^"]+)"', client.get("/ui/").text)
    assert sorted(ids) == ["open.yaml", "vo.yaml"]
    assert client.get("/ui/configure?template=other.yaml").status_code == 400
    # a user name and password carry no VO
    local = make_client(catalogue_dir=cat)
    from .conftest import login

    login(local)
    ids = re.findall(r'data-testid="catalogue-card" data-id="([^"]+)"', local.get("/ui/").text)
    assert ids == ["open.yaml"]
