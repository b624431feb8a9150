"""IM's infrastructure routes: the collection, one infrastructure, and its operations."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from orbis.api import plan_view
from orbis.api.deps import (
    AUTH_HEADER,
    TEMPLATE_BODY,
    TEMPLATE_NAME_HEADER,
    body_kind,
    caller,
    infra_uri,
    parse_ids,
    read_body,
    service,
    text_body,
)
from orbis.api.negotiation import ApiError, empty, flag, uri_list, wants
from orbis.auth import Authenticator, AuthError

router = APIRouter(dependencies=[Depends(AUTH_HEADER)], tags=["infrastructures"])
Flag = Query(None, description="yes/no/true/false/1/0")


@router.get("/infrastructures")
async def list_infrastructures(
    request: Request, filter: str | None = Query(None, description="regex over the template")
) -> Response:
    """URIs of the caller's infrastructures (`text/uri-list`, or `{"uri-list": [...]}`)."""
    who = await caller(request, collection=True)
    wants(request, "text/uri-list")
    ids = service(request).list_ids(who, filter)
    return uri_list(request, [infra_uri(request, i) for i in ids])


@router.post("/infrastructures", openapi_extra=TEMPLATE_BODY)
async def create_infrastructure(
    request: Request, async_: str | None = Query(None, alias="async"), dry_run: str | None = Flag
) -> Response:
    """Create an infrastructure from TOSCA (or RADL); answers its URI and an `InfID` header.
    With `dry_run` nothing is created: the answer estimates the resources per cloud."""
    who = await caller(request, collection=True)
    body_kind(request)
    svc = service(request)
    body = await read_body(request)
    name = request.headers.get(TEMPLATE_NAME_HEADER, "template.yaml")
    if flag(request, "dry_run"):
        template, _ = await svc.parse_async(body, name)
        svc.check_quota(who.key, sum(template.counts().values()))  # as the create would
        estimate = plan_view.dry_run(template, who, request.app.state.settings)
        return Response(json.dumps(estimate), media_type="application/json")
    wants(request, "text/uri-list")  # refuse an unservable Accept before creating anything
    infra_id = await svc.create(who, body, name, wait_launch=not flag(request, "async"))
    response = uri_list(request, [infra_uri(request, infra_id)], single=True)
    response.headers["InfID"] = infra_id
    return response


@router.put(
    "/infrastructures",
    openapi_extra=text_body("application/json", description="the `data` of an export"),
)
async def import_infrastructure(request: Request) -> Response:
    """Import an exported infrastructure under a new id; the caller becomes owner."""
    who = await caller(request, collection=True)
    body_kind(request, {"application/json", ""})
    wants(request, "text/uri-list")
    infra_id = await service(request).import_(who, await read_body(request))
    return uri_list(request, [infra_uri(request, infra_id)], single=True)


@router.get("/infrastructures/{infId}")
async def infrastructure_vms(request: Request, infId: str) -> Response:
    """URIs of the infrastructure's VMs."""
    who = await caller(request)
    wants(request, "text/uri-list")
    nodes = service(request).nodes(who, infId)
    return uri_list(request, [f"{infra_uri(request, infId)}/vms/{n.vm_id}" for n in nodes])


@router.post("/infrastructures/{infId}", openapi_extra=TEMPLATE_BODY)
async def add_resources(request: Request, infId: str, context: str | None = Flag) -> Response:
    """Add resources (a TOSCA update merged with the stored template, or RADL deploys)."""
    who = await caller(request)
    body_kind(request)
    wants(request, "text/uri-list")
    ctx = flag(request, "context", True)
    svc = service(request)
    body = await read_body(request)
    svc.infrastructure(who, infId)
    new_ids = await svc.add_resources(who, infId, body, context=ctx)
    response = uri_list(request, [f"{infra_uri(request, infId)}/vms/{i}" for i in new_ids])
    if ctx:
        response.headers["InfID"] = infId
    return response


@router.delete("/infrastructures/{infId}")
async def destroy_infrastructure(
    request: Request,
    infId: str,
    force: str | None = Flag,
    async_: str | None = Query(None, alias="async"),
) -> Response:
    """Destroy the infrastructure and every resource it made (`async`: return at once)."""
    who = await caller(request)
    await service(request).destroy(
        who, infId, wait=not flag(request, "async"), force=flag(request, "force")
    )
    return empty()


@router.put("/infrastructures/{infId}/{op}", openapi_extra=TEMPLATE_BODY)
async def infrastructure_operation(
    request: Request, infId: str, op: str, vm_list: str | None = Query(None)
) -> Response:
    """`start`, `stop`, or `reconfigure` (optional RADL/TOSCA body, `vm_list` of VM ids)."""
    who = await caller(request)
    svc = service(request)
    if op in ("start", "stop"):
        svc.infrastructure(who, infId)
        await svc.power(who, infId, op)
        return empty()
    if op != "reconfigure":
        raise ApiError(404, f"Incorrect infrastructure operation: {op}")
    body_kind(request)
    vm_ids = None
    if vm_list is not None:
        vm_ids = parse_ids(vm_list, "Incorrect vm_list format.")
    body = await read_body(request)
    svc.infrastructure(who, infId)
    await svc.reconfigure(who, infId, body or None, vm_ids)
    response = empty()
    response.headers["InfID"] = infId
    return response


@router.post(
    "/infrastructures/{infId}/authorization",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "type": {"type": "string"},
                            "username": {"type": "string"},
                            "password": {"type": "string"},
                            "token": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def add_owner(request: Request, infId: str, overwrite: str | None = Flag) -> Response:
    """Give another identity access (appended; `overwrite` replaces the owners)."""
    who = await caller(request)
    body_kind(request, {"application/json", ""})
    replace = flag(request, "overwrite")
    svc = service(request)
    svc.infrastructure(who, infId)
    try:
        line = json.loads(await read_body(request))
    except ValueError:
        raise ApiError(400, "Error modifying Inf. owners: the body is not JSON") from None
    if not isinstance(line, dict) or not all(isinstance(v, str) for v in line.values()):
        raise ApiError(400, "Error modifying Inf. owners: expected one object of strings")
    line.setdefault("type", "InfrastructureManager")
    if line["type"] != "InfrastructureManager":
        raise ApiError(400, "Error modifying Inf. owners: type must be InfrastructureManager")
    auth: Authenticator = request.app.state.authenticator
    try:
        key, name, _exp = auth.line_identity(line)
    except AuthError as exc:
        raise ApiError(400, f"Error modifying Inf. owners: {exc}") from None
    svc.change_owners(who, infId, [(key, name)], overwrite=replace)
    return empty()
