"""What every dashboard page shares: rendering (Jinja2, autoescaped), the session and the user's
identity, the CSRF check, and errors turned into a page (never a stack trace)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from orbis.api.negotiation import ApiError
from orbis.auth import Authenticator, AuthError, Identity
from orbis.secrets import SecretError
from orbis.service import (
    OrbisService,
    ServiceError,
)
from orbis.web import oidc_tokens
from orbis.web.session import Session, Sessions, csrf_ok

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
# Only this site's own files: no inline script, no framing, forms post back here only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

env = Environment(
    loader=FileSystemLoader(str(HERE / "templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class LoginRequired(Exception):
    """The page needs a logged-in user; `expired` when the session has just ended."""

    def __init__(self, expired: bool = False) -> None:
        self.expired = expired


class CsrfRefused(Exception):
    """A form posted without this session's CSRF token."""


def sessions(request: Request) -> Sessions:
    found: Sessions = request.app.state.web_sessions
    return found


def service(request: Request) -> OrbisService:
    svc: OrbisService = request.app.state.service
    return svc


def session(request: Request) -> Session:
    """The request's session (read once per request)."""
    found: Session | None = getattr(request.state, "web_session", None)
    if found is None:
        found = sessions(request).read(request)
        request.state.web_session = found
    return found


def user_session(request: Request) -> Session:
    """The session of a logged-in user, else LoginRequired."""
    current = session(request)
    if not current.logged_in:
        raise LoginRequired(current.expired)
    return current


async def identity(request: Request, clouds: list[dict[str, str]] | None = None) -> Identity:
    """The logged-in user as the API knows them (the same identity as their IM auth line);
    `clouds`: cloud credential lines to act with."""
    current = user_session(request)
    auth: Authenticator = request.app.state.authenticator
    header = current.header(clouds or [])
    try:
        if "token" in current.line:  # may fetch the issuer's keys: off the event loop
            return await run_in_threadpool(auth.identify, header)
        return auth.identify(header)
    except AuthError:  # an OIDC token that has expired since the login, say
        raise LoginRequired(expired=True) from None


async def renew_token(request: Request) -> None:
    """Renew the session's OIDC access token shortly before it expires (refresh_token grant);
    when the issuer refuses and the token has expired, the session ends (the login page says
    so). A refusal while the token is still good is left for the next request: two pages
    renewing at once both hold the one refresh token the issuer may have rotated."""
    current = session(request)
    if not oidc_tokens.due(current):
        return
    renewed = await run_in_threadpool(oidc_tokens.refresh, request.app.state.settings,
                                      request.app.state.authenticator, current)  # fmt: skip
    if renewed is not None:
        request.state.web_session = renewed  # the same CSRF token: open forms still post
    elif current.token_expires > time.time():
        # not written back: another page's renewal may have set a newer cookie meanwhile
        request.state.web_stale = current
    else:
        ended = sessions(request).new()
        ended.expired = True
        request.state.web_session = ended


async def form_of(request: Request) -> Any:
    """The posted form, once its CSRF token is checked (CsrfRefused otherwise)."""
    form = await request.form()
    if not csrf_ok(session(request), form.get("csrf")):
        raise CsrfRefused()
    return form


def seal_value(request: Request, name: str, value: str) -> str:
    """A masked or uploaded form value sealed for the next page of this session's form (bound
    to the input's name and the session's CSRF token, so it opens nowhere else)."""
    return sessions(request).seal({"n": name, "c": session(request).csrf, "v": value})


def unseal_value(request: Request, name: str, sealed: str) -> str | None:
    current = session(request)
    data = sessions(request).open(sealed, sessions(request).lifetime)
    if data is None or data.get("n") != name or data.get("c") != current.csrf:
        return None
    return str(data.get("v") or "")


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Template `name` rendered for this request, with the session cookie (re)written."""
    current = session(request)
    html = env.get_template(name).render(
        request=request, session=current, csrf=current.csrf,
        seal=lambda field_name, value: seal_value(request, field_name, value), **context
    )
    response = HTMLResponse(html, status_code=status)
    finish(request, response)
    return response


def redirect(request: Request, url: str) -> Response:
    response = RedirectResponse(url, status_code=303)
    finish(request, response)
    return response


def finish(request: Request, response: Response) -> None:
    response.headers.update(SECURITY_HEADERS)
    current: Session | None = getattr(request.state, "web_session", None)
    if current is None or getattr(request.state, "web_logged_out", False):
        return
    if current is not getattr(request.state, "web_stale", None):
        sessions(request).write(request, response, current)


def error_page(request: Request, status: int, message: str, title: str = "") -> HTMLResponse:
    return page(request, "error.html", status, title=title or "Something went wrong",
                message=message)  # fmt: skip


class WebRoute(APIRoute):
    """A dashboard route: failures become a page saying what went wrong (or the login page)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                await renew_token(request)
                return await original(request)
            except LoginRequired as exc:
                target = request.url.path if request.method == "GET" else "/ui/"
                query = f"?next={quote(target)}" + ("&expired=1" if exc.expired else "")
                return redirect(request, "/ui/login" + query)
            except CsrfRefused:
                return error_page(request, 403, "This form did not carry a valid CSRF token "
                                  "(it came from another site, or the page is too old). Go "
                                  "back, reload the page and try again.", "Form refused")
            except ServiceError as exc:
                return error_page(request, exc.status, str(exc))
            except ApiError as exc:
                return error_page(request, exc.status, exc.message)
            except SecretError as exc:
                return error_page(request, 400, str(exc))
            except HTTPException as exc:
                return error_page(request, exc.status_code, str(exc.detail))
            except RequestValidationError:
                return error_page(request, 400, "The request is missing a value or has a wrong "
                                  "one.")  # fmt: skip
            except AuthError as exc:
                return error_page(request, 401, str(exc))
            except DBAPIError:
                log.warning("dashboard %s %s: database unavailable", request.method,
                            request.url.path)  # fmt: skip
                return error_page(request, 503, "The database is unavailable; try again in a "
                                  "moment.")  # fmt: skip
            except Exception:  # never a stack trace on a page: the log has it
                log.exception("dashboard %s %s failed", request.method, request.url.path)
                return error_page(request, 500, "The server could not do this; the error is in "
                                  "its log.")  # fmt: skip

        return handler
