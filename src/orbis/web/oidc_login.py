"""Sign-in through an OIDC issuer: the authorization-code flow with PKCE (RFC 7636, S256).

Offered for each trusted issuer (ORBIS_OIDC_ISSUERS) once the dashboard has a client id there
(ORBIS_OIDC_CLIENT_ID; ORBIS_OIDC_CLIENT_SECRET for a confidential client). The flow's state,
nonce and code verifier travel in a short-lived sealed cookie (path /ui/login, 10 minutes); the
access token the issuer returns is checked exactly as the API checks a bearer token
(signature by the issuer's keys, expiry, audience), and the session then carries it: the user
is the same identity as `Authorization: Bearer <token>` on the API (EGI Check-in, INDIGO IAM).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from urllib.parse import urlencode, urlsplit

import httpx
import jwt
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from orbis.auth import Authenticator, AuthError
from orbis.web.oidc_tokens import discover, exchange
from orbis.web.pages import WebRoute, finish, page, redirect, sessions

router = APIRouter(route_class=WebRoute, include_in_schema=False)
COOKIE = "orbis_oidc"
COOKIE_PATH = "/ui/login"
FLOW_SECONDS = 600


def issuers_of(request: Request) -> list[str]:
    """Names (hosts) of the issuers users may sign in with; none without a client id."""
    settings = request.app.state.settings
    if not settings.oidc_client_id:
        return []
    return [urlsplit(i).netloc or i for i in settings.oidc_issuers]


def _callback_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ui/login/oidc/callback"


def _login_error(request: Request, message: str, status: int = 400) -> Response:
    return page(request, "login.html", status, title="Sign in", next="/ui/", error=message,
                issuers=issuers_of(request))  # fmt: skip


@router.get("/ui/login/oidc")
async def start(request: Request, issuer: int = 0, next: str = "/ui/") -> Response:
    from orbis.web.routes_login import safe_next

    settings = request.app.state.settings
    names = settings.oidc_issuers
    if not settings.oidc_client_id or not 0 <= issuer < len(names):
        return _login_error(request, "Signing in with an OIDC issuer is not configured here.")
    try:
        meta = await run_in_threadpool(discover, names[issuer])
    except (httpx.HTTPError, ValueError) as exc:
        return _login_error(request, f"The issuer could not be reached: {exc}", 502)
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    flow = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
            "verifier": verifier, "issuer": issuer, "next": safe_next(next),
            "token_endpoint": meta["token_endpoint"]}  # fmt: skip
    query = urlencode({
        "response_type": "code",
        "client_id": settings.oidc_client_id,
        "redirect_uri": _callback_url(request),
        "scope": settings.oidc_scopes,
        "state": flow["state"],
        "nonce": flow["nonce"],
        "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
    })
    response = RedirectResponse(f"{meta['authorization_endpoint']}?{query}", status_code=303)
    response.set_cookie(COOKIE, sessions(request).seal(flow), max_age=FLOW_SECONDS,
                        path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")  # fmt: skip
    finish(request, response)
    return response


@router.get("/ui/login/oidc/callback")
async def callback(request: Request, code: str = "", state: str = "", error: str = "",
                   error_description: str = "") -> Response:  # fmt: skip
    settings = request.app.state.settings
    flow = sessions(request).open(request.cookies.get(COOKIE, ""), FLOW_SECONDS)
    if error:
        return _login_error(request, f"The issuer did not sign you in: "
                            f"{error_description or error}")  # fmt: skip
    if flow is None or not state or not hmac.compare_digest(str(flow.get("state")), state):
        return _login_error(request, "The sign-in could not be completed (it expired, or did not "
                            "start here). Try again.")  # fmt: skip
    form = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": _callback_url(request), "client_id": settings.oidc_client_id or "",
            "code_verifier": str(flow["verifier"])}  # fmt: skip
    try:
        tokens = await run_in_threadpool(exchange, str(flow["token_endpoint"]), form,
                                         settings.oidc_client_secret,
                                         settings.oidc_client_id or "")  # fmt: skip
    except (httpx.HTTPError, ValueError) as exc:
        return _login_error(request, f"The sign-in could not be completed: {exc}", 502)
    access = str(tokens.get("access_token") or "")
    auth: Authenticator = request.app.state.authenticator
    try:  # the API's own check of a bearer token
        _key, name, expires = await run_in_threadpool(auth.line_identity, {"token": access})
    except AuthError as exc:
        return _login_error(request, f"The issuer's token is not accepted: {exc}", 401)
    fresh = sessions(request).new({"token": access}, _display_name(access, name))
    fresh.vos = vos_of(access)
    fresh.token_expires = expires
    fresh.refresh = str(tokens.get("refresh_token") or "")
    if not fresh.refresh:  # nothing to renew the token with: the session ends with it
        fresh.expires = min(fresh.expires, expires)
    request.state.web_session = fresh
    response = redirect(request, str(flow.get("next") or "/ui/"))
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


ENTITLEMENT = re.compile(r"^urn:mace:egi\.eu:group:([^:#]+)")
MAX_VOS = 64


def vos_of(token: str) -> list[str]:
    """The user's virtual organisations, from the (verified) token's claims: EGI Check-in's
    `eduperson_entitlement` (`urn:mace:egi.eu:group:<vo>:…`) and INDIGO IAM's `groups`."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return []
    found: list[str] = []
    entitlements = claims.get("eduperson_entitlement") or []
    for item in entitlements if isinstance(entitlements, list) else [entitlements]:
        match = ENTITLEMENT.match(str(item))
        if match and match.group(1) not in found:
            found.append(match.group(1))
    groups = claims.get("groups") or []
    for item in groups if isinstance(groups, list) else []:
        if str(item) not in found:
            found.append(str(item))
    return found[:MAX_VOS]


def _display_name(token: str, fallback: str) -> str:
    """A name to show (the token was verified just before; this only reads it)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return fallback
    return str(claims.get("preferred_username") or claims.get("name") or fallback)[:80]
