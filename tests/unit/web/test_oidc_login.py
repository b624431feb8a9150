"""OIDC sign-in on the dashboard: authorization code + PKCE (S256) against a local provider;
the session is the same identity as the API's bearer token; a forged or stale state is refused."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from orbis.testing.standins.oidc import LocalIssuer

from .conftest import EMPTY


@pytest.fixture
def provider():
    with LocalIssuer() as found:
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


def signed_in(client, provider, ttl: int):
    """Signed in with access tokens of `ttl` seconds: the CSRF token of the session."""
    from .conftest import csrf_of

    provider.access_ttl = ttl
    assert client.get(start(client), follow_redirects=False).status_code == 303
    return csrf_of(client.get("/ui/infrastructures").text)


def test_the_access_token_is_renewed_before_it_expires(client, provider):
    signed_in(client, provider, ttl=3600)  # far from expiring: nothing renewed
    assert [r["grant_type"] for r in provider.token_requests] == ["authorization_code"]
    client.cookies.clear()
    token = signed_in(client, provider, ttl=60)  # within the margin: renewed on the next page
    grants = [r for r in provider.token_requests if r["grant_type"] == "refresh_token"]
    assert len(grants) == 1 and grants[0]["client_id"] == "orbis-dashboard"
    page = client.get("/ui/infrastructures")
    assert page.status_code == 200 and "alice.oidc" in page.text
    again = [r["refresh_token"] for r in provider.token_requests
             if r["grant_type"] == "refresh_token"]  # fmt: skip
    assert len(again) == 2 and again[0] != again[1]  # the rotated one was kept
    assert f'value="{token}"' in page.text  # the same CSRF token: open forms still post


def test_a_refused_renewal_ends_the_session_only_once_the_token_expired(client, provider,
                                                                      monkeypatch):  # fmt: skip
    from types import SimpleNamespace

    from orbis.web import pages

    signed_in(client, provider, ttl=60)
    provider.refresh_tokens.clear()  # the issuer no longer renews
    answer = client.get("/ui/infrastructures", follow_redirects=False)
    assert answer.status_code == 200
    # the cookie is left as it is: another page's renewal may have just set a newer one
    assert "orbis_session" not in answer.headers.get("set-cookie", "")
    real = pages.time.time
    monkeypatch.setattr(pages, "time", SimpleNamespace(time=lambda: real() + 61))
    answer = client.get("/ui/infrastructures", follow_redirects=False)
    assert answer.status_code == 303 and "expired=1" in answer.headers["location"]


def test_logout_ends_the_session_at_the_issuer_too(client, provider):
    token = signed_in(client, provider, ttl=3600)
    answer = client.post("/ui/logout", data={"csrf": token}, follow_redirects=False)
    assert answer.status_code == 200 and 'data-testid="signed-out"' in answer.text
    url = re.search(r'href="([^"]+)" data-testid="issuer-logout"', answer.text).group(1)
    url = url.replace("&amp;", "&")
    assert url.startswith(provider.url + "/logout?") and 'http-equiv="refresh"' in answer.text
    back = httpx.get(url, follow_redirects=False)
    assert provider.logouts == [{"client_id": "orbis-dashboard",
                                 "post_logout_redirect_uri": "http://testserver/ui/login"}]
    assert back.headers["location"] == "http://testserver/ui/login"
    assert client.get("/ui/", follow_redirects=False).status_code == 303  # signed out here
