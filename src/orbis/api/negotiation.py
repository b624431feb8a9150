"""IM's content negotiation: Accept decides JSON or the route's default type; errors follow it."""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from orbis.redact import redact

TOSCA_TYPES = {"text/yaml", "text/x-yaml", "application/yaml"}
RADL_TYPES = {"text/plain", "*/*", "text/*", ""}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_types(header: str | None) -> list[str]:
    return [
        part.split(";")[0].strip().lower() for part in (header or "").split(",") if part.strip()
    ]


def wants(request: Request, default: str) -> str:
    """'json' or the default media type, by the first Accept entry we can serve (IM's rule)."""
    accepted = media_types(request.headers.get("accept"))
    if not accepted:
        return "json" if default == "application/json" else default
    for media in accepted:
        if media in ("application/json", "application/*"):
            return "json"
        if media in (default, "*/*", "text/*") or (
            default == "application/json" and media == "*/*"
        ):
            return "json" if default == "application/json" else default
    raise ApiError(415, f"Unsupported Accept Media Types: {', '.join(accepted)}")


def answer(request: Request, default: str, field: str, value: Any) -> Response:
    """A property value as `{field: value}` JSON or as text of the default type."""
    if wants(request, default) == "json":
        return Response(json.dumps({field: value}), media_type="application/json")
    if isinstance(value, list):
        value = "\n".join(str(v) for v in value)
    return Response("" if value is None else str(value), media_type=default)


def uri_list(request: Request, uris: list[str], *, single: bool = False) -> Response:
    if wants(request, "text/uri-list") == "json":
        body: Any = {"uri": uris[0]} if single else {"uri-list": [{"uri": u} for u in uris]}
        return Response(json.dumps(body), media_type="application/json")
    return Response("\n".join(uris), media_type="text/uri-list")


def empty() -> Response:
    return Response("", media_type="text/plain")


def error_response(request: Request, status: int, message: str) -> Response:
    message = redact(message)  # a cloud's error may echo what it was sent
    accepted = media_types(request.headers.get("accept"))
    if "application/json" in accepted:
        return Response(
            json.dumps({"message": message, "code": status}),
            status_code=status,
            media_type="application/json",
        )
    if "text/html" in accepted:
        page = (
            f"<html><head><title>Error {status}</title></head><body><h1>Error {status}</h1>"
            f"<p>{html.escape(message)}</p></body></html>"
        )
        return Response(page, status_code=status, media_type="text/html")
    return Response(message, status_code=status, media_type="text/plain")


def base_url(request: Request) -> str:
    """Root URL the client used (honouring the app's root path), ending in '/'."""
    url = str(request.base_url)
    return url if url.endswith("/") else url + "/"


def flag(request: Request, name: str, default: bool = False) -> bool:
    """IM's boolean query flags: yes/no/true/false/1/0, any case."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    raw = raw.split("?")[0].strip().lower()  # IM-client may send "yes?async=yes"
    if raw in ("yes", "true", "1", "on", "y", "t"):
        return True
    if raw in ("no", "false", "0", "off", "n", "f"):
        return False
    raise ApiError(400, f"Incorrect value in {name} parameter")
