"""What every route needs: the service, the caller, request bodies within limits, URIs, and
the OpenAPI description of IM's bodies and parameters."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader

from orbis.api.negotiation import RADL_TYPES, TOSCA_TYPES, ApiError, base_url, media_types
from orbis.auth import Authenticator, AuthError, Identity
from orbis.config import Settings
from orbis.paths import VM_IDS_SHAPE, is_safe_id
from orbis.service import OrbisService

# Declared as a security scheme so the OpenAPI document (and schemathesis) knows the header.
AUTH_HEADER = APIKeyHeader(name="Authorization", auto_error=False, description="IM auth data")
TEMPLATE_NAME_HEADER = "x-orbis-template-name"  # lets error positions name the user's file
JSON_TYPES = {"application/json"}


def service(request: Request) -> OrbisService:
    svc: OrbisService = request.app.state.service
    return svc


def settings(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found


async def caller(request: Request, *, collection: bool = False) -> Identity:
    """The authenticated user; IM answers 401 on collection routes and 400 elsewhere."""
    header = request.headers.get("authorization")
    auth: Authenticator = request.app.state.authenticator
    try:
        if header and ("token" in header or header[:7].lower() == "bearer "):
            # may fetch an issuer's keys (blocking HTTP): off the event loop
            return await run_in_threadpool(auth.identify, header)
        return auth.identify(header)
    except AuthError as exc:
        raise ApiError(401 if (collection or not header) else 400, str(exc)) from exc


async def checked_path_ids(request: Request) -> None:
    """Every route's infrastructure and VM ids, checked before its handler runs: an id of
    another shape (`..`, `/`, NUL, overlong) names nothing, so the answer is 404 whatever the
    route would have done with it."""
    params = request.path_params
    if "infId" in params and not is_safe_id(params["infId"]):
        raise ApiError(404, "Invalid infrastructure ID or access not granted.")
    if "vmId" in params and not VM_IDS_SHAPE.fullmatch(params["vmId"]):
        raise ApiError(404, "Invalid VM ID")


def infra_uri(request: Request, infra_id: str) -> str:
    return f"{base_url(request)}infrastructures/{infra_id}"


async def read_body(request: Request) -> str:
    """The request body as text, refused with 413 past the configured size."""
    limit = settings(request).max_request_bytes
    size = 0
    chunks = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"Request body too large (limit {limit} bytes)")
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "The request body is not UTF-8 text") from None


def body_kind(request: Request, allowed: set[str] | None = None) -> str:
    """'tosca', 'radl' or 'json' from Content-Type (IM's rules: none means RADL), else 415."""
    kinds = media_types(request.headers.get("content-type")) or [""]
    for kind in kinds:
        if allowed is not None and kind not in allowed:
            continue
        if kind in TOSCA_TYPES:
            return "tosca"
        if kind in JSON_TYPES:
            return "json"
        if kind in RADL_TYPES:
            return "radl"
    raise ApiError(415, f"Unsupported Media Type {request.headers.get('content-type')}")


def parse_ids(raw: str, message: str, status: int = 400) -> list[int]:
    """'1,2,3' → [1, 2, 3]."""
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise ApiError(status, message) from None
    if not ids or any(i < 0 for i in ids):
        raise ApiError(status, message)
    return ids


def text_body(*types: str, description: str = "") -> dict[str, Any]:
    """openapi_extra for a raw text body of these media types."""
    schema = {"type": "string"}
    return {
        "requestBody": {
            "description": description,
            "required": False,
            "content": {t: {"schema": schema} for t in types},
        }
    }


TEMPLATE_BODY = text_body(
    "text/yaml",
    "text/plain",
    "application/json",
    description="TOSCA YAML (text/yaml), RADL (text/plain) or RADL-JSON (application/json)",
)
