"""The web dashboard served by `orbis server` under /ui (docs/web.md): server-rendered pages
(Jinja2) with one small vendored script and a style sheet, calling the same service as the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse, Response

from orbis.web.catalogue import Catalogue, default_folder
from orbis.web.session import Sessions

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Add the dashboard's routes and files to the API's application."""
    from orbis.web import (
        credentials,
        image_picker,
        oidc_login,
        routes_catalogue,
        routes_infra,
        routes_login,
    )

    settings = app.state.settings
    app.state.web_sessions = Sessions(app.state.sealer, settings.web_session_seconds)
    app.state.web_catalogue = Catalogue(settings.catalogue_dir or default_folder(),
                                        settings.catalogue_hide_tags)  # fmt: skip
    app.state.web_tasks = set()
    app.include_router(routes_login.router)
    app.include_router(routes_catalogue.router)
    app.include_router(routes_infra.router)
    app.include_router(credentials.router)
    app.include_router(oidc_login.router)
    app.include_router(image_picker.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")

    @app.get("/ui", include_in_schema=False)
    async def _ui_root() -> Response:
        return RedirectResponse("/ui/", status_code=307)
