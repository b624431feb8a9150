"""The FastAPI application: wiring of store, provider and service; errors turned into answers."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orbis import __version__, config, redact, web
from orbis.api.hot import HotReads
from orbis.api.negotiation import ApiError, error_response
from orbis.api.operations import UNAVAILABLE, Observability
from orbis.api.operations import router as operations_router
from orbis.api.routes import router
from orbis.api.stream_slots import StreamSlots
from orbis.auth import Authenticator
from orbis.providers.base import Provider
from orbis.secrets import Sealer, SecretError
from orbis.service import (
    OrbisService,
    ServiceError,
)
from orbis.service.parse_pool import ParsePool
from orbis.store.repository import Store

log = logging.getLogger(__name__)

CORS_HEADERS = {
    "Access-Control-Allow-Methods": "PUT, GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Origin, Accept, Content-Type, Authorization",
}


class LimitsAndCors:
    """413 on a declared body past the limit (bodies without a length are counted as they are
    read, in deps.read_body); CORS headers and IM's `OPTIONS` answer when configured."""

    def __init__(self, app: ASGIApp, settings: config.Settings) -> None:
        self.app = app
        self.limit = settings.max_request_bytes
        self.origin = settings.cors_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.origin and scope["method"] == "OPTIONS":
            # IM 1.x answers a preflight on any path with 200 and `{}`
            response = Response("{}", media_type="application/json")
            response.headers.update(self._cors())
            await response(scope, receive, send)
            return
        # the raw headers, not a Request: this runs on every request (see hot.py)
        length = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if length.isdigit() and int(length) > self.limit:
            message = f"Request body too large (limit {self.limit} bytes)"
            response = error_response(Request(scope), 413, message)
            response.headers.update(self._cors())
            await response(scope, receive, send)
            return
        if not self.origin:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in self._cors().items():
                    headers[key] = value
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _cors(self) -> dict[str, str]:
        return {"Access-Control-Allow-Origin": self.origin, **CORS_HEADERS} if self.origin else {}


def default_provider(settings: config.Settings) -> Provider:
    """The back-end named by ORBIS_PROVIDER: the local containers, or the simulated cloud."""
    chosen = config.provider_settings()
    if chosen.name == "sim":
        from orbis.providers.sim import SimProvider

        return SimProvider(settings.home / "sim-cloud.db", chosen.sim_latency,
                           chosen.sim_failure_rate, chosen.sim_config_seconds)  # fmt: skip
    if chosen.name != "local":
        raise SystemExit(f"ORBIS_PROVIDER={chosen.name}: unknown back-end (local, sim)")
    from orbis.providers.local import LocalProvider

    local = LocalProvider()
    # "no": reach nodes without a public address only through a public node of theirs (an SSH
    # jump), as on a cloud; for trying out and testing what clouds do, on one machine
    local.private_reachable = os.environ.get("ORBIS_LOCAL_PRIVATE_REACHABLE", "yes") != "no"
    return local


def create_app(
    settings: config.Settings | None = None, provider: Provider | None = None
) -> FastAPI:
    settings = settings or config.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redact.remember([settings.secret_key])
        redact.install()  # the server's log handlers mask secrets (also uvicorn's)
        store = Store(settings.db_url)
        svc = OrbisService(
            store,
            provider or default_provider(settings),
            settings.work_dir,
            parallel=settings.max_parallel_launches,
        )
        svc.configure_access(sealer)
        bounds = config.limits()
        svc.parse_pool = ParsePool(bounds.parse_workers, bounds.parse_cpu_seconds)
        await svc.parse_pool.start()  # warm before the first request (docs/limits.md)
        app.state.service = svc
        await svc.resume()
        # What start-up made (types, parsed type sets, SQLAlchemy's mappers) lives as long as the
        # server: keep it out of the collector's full passes, which otherwise stall requests.
        gc.collect()
        gc.freeze()
        yield
        await svc.shutdown()
        svc.parse_pool.close()

    app = FastAPI(
        title="Orbis",
        version=__version__,
        lifespan=lifespan,
        description="Infrastructure Manager compatible deployment service. See docs/api.md.",
    )
    app.state.settings = settings
    app.state.stream_slots = StreamSlots()  # open event streams per user (bounded)
    sealer = Sealer.for_home(settings.home, settings.secret_key)

    def upgrade_owner_keys(legacy_to_new: Mapping[str, str]) -> None:
        svc = getattr(app.state, "service", None)
        if svc is not None:
            svc.upgrade_owner_keys(legacy_to_new)

    app.state.authenticator = Authenticator(
        settings.oidc_issuers, settings.oidc_audience, settings.admin_users,
        secret=sealer.derive("owner-keys"), on_legacy=upgrade_owner_keys,
    )  # fmt: skip
    app.state.sealer = sealer  # the web dashboard's sessions and stored credentials
    app.include_router(operations_router)
    app.include_router(router)
    web.mount(app)  # the dashboard under /ui (docs/web.md)

    # Plain ASGI middlewares: Starlette's BaseHTTPMiddleware costs a task group per request.
    # The last added is the outermost: CORS headers apply to the hot answers too.
    app.add_middleware(HotReads)
    app.add_middleware(LimitsAndCors, settings=settings)
    app.add_middleware(Observability)  # outermost: counts every answer, 503 on outages

    @app.exception_handler(DBAPIError)
    async def _database_away(request: Request, exc: DBAPIError) -> Response:
        log.warning("%s %s: database unavailable: %s", request.method, request.url.path,
                    str(exc.orig or exc).strip().splitlines()[0][:200])  # fmt: skip
        answer = error_response(request, 503, UNAVAILABLE)
        answer.headers["Retry-After"] = "5"
        return answer

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(request, exc.status, exc.message)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        return error_response(request, exc.status, str(exc))

    @app.exception_handler(SecretError)
    async def _secret_error(request: Request, exc: SecretError) -> Response:
        return error_response(request, 400, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        name = first.get("loc", ["", "request"])[-1]
        return error_response(request, 400, f"Incorrect value in {name} parameter")

    return app
