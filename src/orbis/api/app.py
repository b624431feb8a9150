"""The FastAPI application: wiring of store, provider and service; errors turned into answers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from orbis import __version__, config
from orbis.api.negotiation import ApiError, error_response
from orbis.api.routes import router
from orbis.auth import Authenticator
from orbis.providers.base import Provider
from orbis.secrets import Sealer, SecretError
from orbis.service import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFoundError,
    OrbisService,
    ServiceError,
)
from orbis.store.repository import Store

log = logging.getLogger(__name__)

STATUS = {NotFoundError: 404, Forbidden: 403, Conflict: 409, InvalidRequest: 400}
CORS_HEADERS = {
    "Access-Control-Allow-Methods": "PUT, GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Origin, Accept, Content-Type, Authorization",
}


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

    return LocalProvider()


def create_app(
    settings: config.Settings | None = None, provider: Provider | None = None
) -> FastAPI:
    settings = settings or config.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.db_url)
        svc = OrbisService(
            store,
            provider or default_provider(settings),
            settings.work_dir,
            parallel=settings.max_parallel_launches,
        )
        svc.configure_access(Sealer.for_home(settings.home, settings.secret_key))
        app.state.service = svc
        await svc.resume()
        yield
        await svc.shutdown()

    app = FastAPI(
        title="Orbis",
        version=__version__,
        lifespan=lifespan,
        description="Infrastructure Manager compatible deployment service. See docs/api.md.",
    )
    app.state.settings = settings
    app.state.authenticator = Authenticator(
        settings.oidc_issuers, settings.oidc_audience, settings.admin_users
    )
    app.include_router(router)

    @app.middleware("http")
    async def _limits_and_cors(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        origin = settings.cors_origin
        if origin and request.method == "OPTIONS":
            # IM 1.x answers a preflight on any path with 200 and `{}`
            response = Response("{}", media_type="application/json")
        else:
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > settings.max_request_bytes:
                response = error_response(
                    request, 413, f"Request body too large (limit {settings.max_request_bytes})"
                )
            else:
                response = await call_next(request)
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.update(CORS_HEADERS)
        return response

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(request, exc.status, exc.message)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        return error_response(request, STATUS.get(type(exc), 400), str(exc))

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
