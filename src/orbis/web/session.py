"""The dashboard's login session: one sealed cookie, and the CSRF token bound to it.

The cookie holds, encrypted and authenticated (Fernet, with a key derived from the server
secret), the user's IM identity line (user name and password, or an OIDC access token), a
random CSRF token and the time the session ends (and, after an OIDC sign-in, the issuer's
refresh token and when the access token expires, so it is renewed before that). Nothing is
kept on the server, so any server sharing the secret (several behind one address) reads it, and
logging out drops the cookie (and, after an OIDC sign-in, ends the session at the issuer).
A visitor who has not logged in gets a session too (no identity), so the login form has a CSRF
token of its own; logging in starts a new session with a new token (no fixation).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.responses import Response

from orbis.auth import to_header
from orbis.secrets import Sealer

COOKIE = "orbis_session"
PATH = "/ui"
IM_TYPE = "InfrastructureManager"


@dataclass
class Session:
    """What the cookie carries. `line` is the IM identity line (empty when not logged in)."""

    csrf: str
    expires: float
    line: dict[str, str] = field(default_factory=dict, repr=False)
    name: str = ""  # shown in the header
    vos: list[str] = field(default_factory=list)  # virtual organisations (OIDC entitlements)
    refresh: str = field(default="", repr=False)  # the issuer's refresh token (OIDC), if any
    token_expires: float = 0.0  # when the OIDC access token expires (renewed before that)
    expired: bool = False  # the cookie held a session that has ended (said on the login page)
    flash: str = ""  # not stored: a message for the page being rendered

    @property
    def logged_in(self) -> bool:
        return bool(self.line)

    def header(self, clouds: list[dict[str, str]] = ()) -> str:  # type: ignore[assignment]
        """An IM Authorization header: the identity line, then the given cloud lines."""
        return to_header([{"id": "im", "type": IM_TYPE, **self.line}, *clouds])


class Sessions:
    """Seals sessions into cookies and back."""

    def __init__(self, sealer: Sealer, lifetime: int) -> None:
        key = sealer.derive("web-session")
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self.lifetime = lifetime

    def new(self, line: dict[str, str] | None = None, name: str = "") -> Session:
        return Session(secrets.token_urlsafe(32), time.time() + self.lifetime, line or {}, name)

    def read(self, request: Request) -> Session:
        """The request's session; a fresh anonymous one when absent, broken or ended."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return self.new()
        try:
            data: Any = json.loads(self._fernet.decrypt(raw.encode(), ttl=self.lifetime + 3700))
            session = Session(
                str(data["csrf"]), float(data["expires"]),
                dict(data.get("line") or {}), str(data.get("name") or ""),
                vos=[str(v) for v in data.get("vos") or []],
                refresh=str(data.get("refresh") or ""),
                token_expires=float(data.get("token_expires") or 0),
            )  # fmt: skip
        except (InvalidToken, ValueError, KeyError, TypeError):
            return self.new()
        if session.expires < time.time():
            fresh = self.new()
            fresh.expired = session.logged_in
            return fresh
        return session

    def write(self, request: Request, response: Response, session: Session) -> None:
        data = {"csrf": session.csrf, "expires": session.expires, "line": session.line,
                "name": session.name, "vos": session.vos, "refresh": session.refresh,
                "token_expires": session.token_expires}  # fmt: skip
        response.set_cookie(
            COOKIE,
            self._fernet.encrypt(json.dumps(data).encode()).decode(),
            # kept an hour past the end, so the next visit can say the session has expired
            max_age=max(1, int(session.expires - time.time())) + 3600,
            path=PATH,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )

    def seal(self, data: dict[str, Any]) -> str:
        """Any small JSON value, sealed with the session key (the OIDC flow's state)."""
        return self._fernet.encrypt(json.dumps(data).encode()).decode()

    def open(self, token: str, ttl: int) -> dict[str, Any] | None:
        try:
            data = json.loads(self._fernet.decrypt(token.encode(), ttl=ttl))
        except (InvalidToken, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def clear(response: Response) -> None:
        response.delete_cookie(COOKIE, path=PATH)


def csrf_ok(session: Session, posted: object) -> bool:
    """The form's token is the session's (compared in constant time)."""
    return isinstance(posted, str) and hmac.compare_digest(posted.encode(), session.csrf.encode())
