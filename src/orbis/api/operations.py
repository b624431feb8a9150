"""Routes and middleware for operators: `/health` (alive), `/ready` (database reachable and
schema current), `/metrics` (Prometheus), request counting, and 503 while the database is away
(docs/operations.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orbis import __version__
from orbis.api.negotiation import error_response
from orbis.metrics import LATENCY, REQUESTS, exposition, route_of
from orbis.store.db import schema_is_current

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])
UNAVAILABLE = "Service unavailable: the database does not answer; try again shortly"


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


@router.get("/health")
async def health() -> Response:
    """Orbis addition (IM has none): 200 while the process answers (liveness)."""
    return _json({"status": "ok", "version": __version__})


@router.get("/ready")
async def ready(request: Request) -> Response:
    """200 when this server can work: its database answers and has the schema this version
    needs; else 503 with the reason (readiness: a load balancer sends no requests here)."""
    store = request.app.state.service.store

    def check() -> str | None:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            if not schema_is_current(conn):
                return "the database schema is not the one this version expects"
        return None

    try:
        problem = await asyncio.to_thread(check)
    except DBAPIError as exc:
        problem = f"the database does not answer ({type(exc.orig or exc).__name__})"
    if problem:
        return _json({"status": "unavailable", "reason": problem}, 503)
    return _json({"status": "ready", "version": __version__})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format (no authentication: keep it off public listeners)."""
    body = await asyncio.to_thread(exposition, request.app.state.service.store)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


class Observability:
    """Counts and times every request; a database outage becomes a 503 with a one-line log
    entry instead of a 500 with a traceback (the work itself stays queued in the store)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        sent = False

        async def counting(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status, sent = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, counting)
        except DBAPIError as exc:
            log.warning("%s %s: database unavailable: %s", scope["method"], scope["path"],
                        str(exc.orig or exc).strip().splitlines()[0][:200])  # fmt: skip
            if sent:
                return  # a stream already under way just ends
            await database_unavailable(scope, receive, send)
            status = 503
        finally:
            route = route_of(scope["path"])
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


async def database_unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(Request(scope), 503, UNAVAILABLE)
    response.headers["Retry-After"] = "5"
    await response(scope, receive, send)
