"""Node quotas per identity (administrators only): who has how many nodes, and their limits."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from orbis.api.deps import AUTH_HEADER, body_kind, caller, read_body, service, text_body
from orbis.api.negotiation import ApiError

router = APIRouter(dependencies=[Depends(AUTH_HEADER)], tags=["orbis"])
FIELDS = ("max_nodes_per_infra", "max_nodes_per_user")


@router.get("/orbis/quotas")
async def list_quotas(request: Request) -> Response:
    """Every identity with a live infrastructure or its own quota: owner key, name, live
    nodes, and the quotas that apply to it."""
    who = await caller(request, collection=True)
    body = {"quotas": service(request).quotas(who)}
    return Response(json.dumps(body), media_type="application/json")


@router.put(
    "/orbis/quotas/{key}",
    openapi_extra=text_body(
        "application/json",
        description='{"max_nodes_per_infra": N|null, "max_nodes_per_user": N|null}; null: '
        "the server's setting",
    ),
)
async def set_quota(request: Request, key: str) -> Response:
    """Set the node quotas of the identity with this owner key (from GET /orbis/quotas)."""
    who = await caller(request, collection=True)
    body_kind(request, {"application/json", ""})
    if not 0 < len(key) <= 64:
        raise ApiError(400, "Error setting the quota: an owner key is 1 to 64 characters")
    try:
        given = json.loads(await read_body(request) or "{}")
    except ValueError:
        raise ApiError(400, "Error setting the quota: the body is not JSON") from None
    if not isinstance(given, dict) or set(given) - set(FIELDS):
        raise ApiError(400, f"Error setting the quota: expected an object with {FIELDS}")
    answer = service(request).set_quota(who, key, given.get(FIELDS[0]), given.get(FIELDS[1]))
    return Response(json.dumps(answer), media_type="application/json")
