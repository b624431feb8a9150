"""Dashboard sessions: login, the cookie's flags and sealing, CSRF on every form, expiry,
logout, and no open redirect."""

from __future__ import annotations

import time

from .conftest import csrf_of, login


def test_pages_need_a_login_and_come_back_after_it(client):
    answer = client.get("/ui/infrastructures", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=/ui/infrastructures"
    token = csrf_of(client.get("/ui/login").text)
    answer = client.post("/ui/login", follow_redirects=False, data={
        "csrf": token, "username": "alice", "password": "a1", "next": "/ui/infrastructures"})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/infrastructures"


def test_the_cookie_is_httponly_samesite_sealed_and_secure_behind_tls(client):
    token = csrf_of(client.get("/ui/login").text)
    answer = client.post("/ui/login", follow_redirects=False, data={
        "csrf": token, "username": "alice", "password": "s3cret-pw", "next": "/ui/"})
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    assert "s3cret-pw" not in cookie and "alice" not in cookie  # sealed, not just signed
    tls = client.get("https://testserver/ui/login")
    assert "Secure" in tls.headers["set-cookie"]


def test_a_form_without_the_csrf_token_is_refused(client):
    login(client)
    for path, data in [("/ui/plan", {"template": "vm.yaml"}), ("/ui/logout", {}),
                       ("/ui/custom", {"template": "x"}),
                       ("/ui/infrastructures/abc/destroy", {"confirm": "yes"})]:
        answer = client.post(path, data=data)
        assert answer.status_code == 403, path
        assert "CSRF" in answer.text
        answer = client.post(path, data={**data, "csrf": "forged"})
        assert answer.status_code == 403, path
    assert client.get("/ui/", follow_redirects=False).status_code == 200  # still logged in


def test_the_login_form_itself_needs_its_token(client):
    client.get("/ui/login")
    answer = client.post("/ui/login", data={"username": "alice", "password": "a1"})
    assert answer.status_code == 403
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_logging_in_starts_a_new_session_with_a_new_token(client):
    before = csrf_of(client.get("/ui/login").text)
    after = login(client)
    assert before != after


def test_logout_ends_the_session(client):
    token = login(client)
    answer = client.post("/ui/logout", data={"csrf": token}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"
    assert 'orbis_session=""' in answer.headers["set-cookie"] or "Max-Age=0" in \
        answer.headers["set-cookie"]  # fmt: skip
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_an_expired_session_says_so_on_the_login_page(make_client):
    client = make_client(web_session_seconds=1)
    login(client)
    time.sleep(1.6)
    answer = client.get("/ui/infrastructures")
    assert answer.url.path == "/ui/login"
    assert "Your session has expired" in answer.text


def test_a_tampered_cookie_is_no_session(client):
    login(client)
    value = client.cookies.get("orbis_session")
    client.cookies.set("orbis_session", value[:-4] + "AAAA", path="/ui")
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_empty_or_reserved_names_are_refused_with_a_message(client):
    token = csrf_of(client.get("/ui/login").text)
    answer = client.post("/ui/login", data={"csrf": token, "username": "", "password": ""})
    assert answer.status_code == 400 and "Enter a user name" in answer.text
    answer = client.post("/ui/login", data={"csrf": csrf_of(answer.text),
                                            "username": "__OPENID__x", "password": "p"})
    assert answer.status_code == 400 and "reserved" in answer.text


def test_no_open_redirect_after_login(client):
    token = csrf_of(client.get("/ui/login").text)
    for target in ("//evil.example/", "https://evil.example/", "/\\evil"):
        answer = client.post("/ui/login", follow_redirects=False, data={
            "csrf": token, "username": "alice", "password": "a1", "next": target})
        assert answer.headers["location"] == "/ui/"
        token = csrf_of(client.get("/ui/login", follow_redirects=True).text)


def test_pages_forbid_inline_script_and_framing(client):
    answer = client.get("/ui/login")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "<script>" not in answer.text
