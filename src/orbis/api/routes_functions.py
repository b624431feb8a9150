"""An infrastructure's functions (OSCAR services, Lambda functions) and synchronous runs."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from orbis.api.deps import AUTH_HEADER, caller, service, settings
from orbis.api.negotiation import ApiError

router = APIRouter(dependencies=[Depends(AUTH_HEADER)], tags=["orbis"])


@router.get("/orbis/infrastructures/{infId}/functions")
async def list_functions(request: Request, infId: str) -> Response:
    """Each function with where it went (backend, site), its endpoint, state and error."""
    who = await caller(request)
    found = service(request).functions_of(who, infId)
    return Response(json.dumps({"functions": found}), media_type="application/json")


@router.post("/orbis/infrastructures/{infId}/functions/{name}/invoke")
async def invoke_function(request: Request, infId: str, name: str) -> Response:
    """Run one function synchronously on the request body (any bytes); answers its output."""
    who = await caller(request)
    limit = settings(request).max_request_bytes
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"Request body too large (limit {limit} bytes)")
        chunks.append(chunk)
    answer = await service(request).invoke(who, infId, name, b"".join(chunks))
    return Response(answer, media_type="application/octet-stream")
