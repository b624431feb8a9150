"""The dashboard's calls to a trusted OIDC issuer: its metadata (discovery, cached), the token
endpoint (the sign-in's code exchange and the refresh_token grant that renews an access token
before it expires) and the end-session address that logs the user out at the issuer too
(OpenID Connect RP-Initiated Logout)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt

from orbis.auth import Authenticator, AuthError
from orbis.config import Settings
from orbis.web.session import Session

log = logging.getLogger(__name__)
TIMEOUT = 10.0
REFRESH_MARGIN = 120  # seconds before the access token's expiry that it is renewed
DISCOVERY_SECONDS = 600  # metadata kept this long (endpoints rarely move)
_lock = threading.Lock()
_metadata: dict[str, tuple[float, dict[str, Any]]] = {}


def discover(issuer: str) -> dict[str, Any]:
    """The issuer's metadata (the operator's trusted issuer: not a user-supplied address)."""
    with _lock:
        cached = _metadata.get(issuer)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    answer = httpx.get(url, timeout=TIMEOUT)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    if not found.get("authorization_endpoint") or not found.get("token_endpoint"):
        raise ValueError("the issuer's metadata names no authorization or token endpoint")
    with _lock:
        _metadata[issuer] = (time.monotonic() + DISCOVERY_SECONDS, found)
    return found


def exchange(endpoint: str, form: dict[str, str], secret: str | None, client: str
             ) -> dict[str, Any]:  # fmt: skip
    """The token endpoint's answer to a grant (ValueError with the issuer's reason)."""
    auth = (client, secret) if secret else None
    answer = httpx.post(endpoint, data=form, auth=auth, timeout=TIMEOUT,
                        headers={"Accept": "application/json"})  # fmt: skip
    if answer.status_code != 200:
        try:
            reason = answer.json().get("error_description") or answer.json().get("error")
        except ValueError:
            reason = f"HTTP {answer.status_code}"
        raise ValueError(f"the issuer refused: {reason}")
    found: dict[str, Any] = answer.json()
    return found


def _claims(token: str) -> dict[str, Any]:
    """A token's claims, unverified: only for tokens checked when they were received."""
    try:
        found: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return found


def trusted_issuer(settings: Settings, token: str) -> str | None:
    """The configured issuer (as configured) that issued `token`, if any."""
    issuer = str(_claims(token).get("iss") or "").rstrip("/")
    return next((i for i in settings.oidc_issuers if i.rstrip("/") == issuer), None)


def due(current: Session) -> bool:
    """The session's access token should be renewed now (it has a refresh token)."""
    return bool(current.refresh) and current.token_expires - time.time() < REFRESH_MARGIN


def refresh(settings: Settings, auth: Authenticator, current: Session) -> Session | None:
    """The session with a renewed access token (refresh_token grant), or None when the issuer
    refuses or answers with a token of someone else. Blocking: call it off the event loop."""
    old = current.line.get("token", "")
    issuer = trusted_issuer(settings, old)
    if issuer is None or not settings.oidc_client_id:
        return None
    form = {"grant_type": "refresh_token", "refresh_token": current.refresh,
            "client_id": settings.oidc_client_id}  # fmt: skip
    try:
        endpoint = str(discover(issuer)["token_endpoint"])
        tokens = exchange(endpoint, form, settings.oidc_client_secret, settings.oidc_client_id)
        access = str(tokens.get("access_token") or "")
        key, _name, expires = auth.line_identity({"token": access})
    except (httpx.HTTPError, ValueError, AuthError) as exc:
        log.info("dashboard: renewing an access token at %s failed: %s", issuer, exc)
        return None
    before = _claims(old)
    if key != auth.token_key(str(before.get("iss")), str(before.get("sub"))):
        log.warning("dashboard: %s renewed a token for another subject; session ended", issuer)
        return None
    return replace(current, line={"token": access}, token_expires=expires,
                   refresh=str(tokens.get("refresh_token") or current.refresh))  # fmt: skip


def end_session_url(settings: Settings, token: str, back: str) -> str | None:
    """Where to send the browser to log out at the issuer of `token` too (then back to
    `back`), or None when the issuer offers no end-session endpoint or cannot be reached."""
    issuer = trusted_issuer(settings, token)
    if issuer is None:
        return None
    try:
        endpoint = str(discover(issuer).get("end_session_endpoint") or "")
    except (httpx.HTTPError, ValueError) as exc:
        log.info("dashboard: no logout at %s: %s", issuer, exc)
        return None
    if urlsplit(endpoint).scheme not in ("https", "http") or not urlsplit(endpoint).netloc:
        return None
    query = urlencode({"client_id": settings.oidc_client_id or "",
                       "post_logout_redirect_uri": back})  # fmt: skip
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
