"""Logging in and out. The login form takes the same user name and password as an IM auth line
(`type = InfrastructureManager; username = …; password = …`), so the dashboard shows what the
user made through the API or im_client; as in IM there is no account to create: the pair is
the identity. OIDC sign-in is in routes_oidc.py."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from orbis.auth import OPENID_PREFIX, Authenticator, AuthError
from orbis.web import oidc_tokens
from orbis.web.oidc_login import issuers_of
from orbis.web.pages import WebRoute, form_of, page, redirect, session, sessions

router = APIRouter(route_class=WebRoute, include_in_schema=False)
MAX_FIELD = 256


def safe_next(target: object) -> str:
    """Where to go after logging in: a dashboard path only (no open redirect)."""
    text = str(target or "")
    if text.startswith("/ui/") and not text.startswith("//") and "\\" not in text:
        return text
    return "/ui/"


@router.get("/ui/login")
async def login_page(request: Request, next: str = "/ui/", expired: str = "") -> Response:
    current = session(request)
    if current.logged_in:
        return redirect(request, safe_next(next))
    note = "Your session has expired: sign in again." if expired or current.expired else ""
    return page(request, "login.html", title="Sign in", next=safe_next(next), note=note,
                issuers=issuers_of(request))  # fmt: skip


@router.post("/ui/login")
async def login(request: Request) -> Response:
    form = await form_of(request)
    user = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    target = safe_next(form.get("next"))
    problem = ""
    if not user or not password:
        problem = "Enter a user name and a password."
    elif len(user) > MAX_FIELD or len(password) > MAX_FIELD:
        problem = f"The user name and the password are at most {MAX_FIELD} characters."
    elif any(c in user + password for c in "\n\r\x00"):
        problem = "The user name and the password cannot contain line breaks."
    elif user.startswith(OPENID_PREFIX):
        problem = f"User names starting with {OPENID_PREFIX} are reserved for OIDC sign-in."
    if not problem:
        auth: Authenticator = request.app.state.authenticator
        try:
            auth.line_identity({"username": user, "password": password})
        except AuthError as exc:
            problem = str(exc)
    if problem:
        return page(request, "login.html", 400, title="Sign in", next=target, error=problem,
                    username=user, issuers=issuers_of(request))  # fmt: skip
    fresh = sessions(request).new({"username": user, "password": password}, user)
    request.state.web_session = fresh  # a new session and CSRF token: no fixation
    return redirect(request, target)


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    """Drop the session; after an OIDC sign-in, send the browser on to the issuer's end-session
    endpoint too (through a page: a form's redirect to another site breaks `form-action`)."""
    await form_of(request)
    token = session(request).line.get("token", "")
    request.state.web_logged_out = True
    back = str(request.base_url).rstrip("/") + "/ui/login"
    issuer_url = await run_in_threadpool(oidc_tokens.end_session_url,
                                         request.app.state.settings, token, back) \
        if token else None  # fmt: skip
    if issuer_url is None:
        response = redirect(request, "/ui/login")
    else:
        request.state.web_session = sessions(request).new()  # the page shows no one signed in
        response = page(request, "logged_out.html", title="Signed out", issuer_url=issuer_url)
    sessions(request).clear(response)
    return response
