"""The FastAPI application: wiring of store, provider and service; errors turned into answers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from orbis import __version__, config
from orbis.api.negotiation import ApiError, error_response
from orbis.api.routes import router
from orbis.providers.base import Provider
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


def default_provider() -> Provider:
    from orbis.providers.local import LocalProvider

    return LocalProvider()


def create_app(
    settings: config.Settings | None = None, provider: Provider | None = None
) -> FastAPI:
    settings = settings or config.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.db_url)
        svc = OrbisService(store, provider or default_provider(), settings.work_dir)
        app.state.service = svc
        await svc.resume()
        yield
        await svc.shutdown()

    app = FastAPI(
        title="Orbis",
        version=__version__,
        lifespan=lifespan,
        description="Infrastructure Manager compatible deployment service",
    )
    app.include_router(router)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(request, exc.status, exc.message)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        return error_response(request, STATUS.get(type(exc), 400), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        name = first.get("loc", ["", "request"])[-1]
        return error_response(request, 400, f"Incorrect value in {name} parameter")

    return app
