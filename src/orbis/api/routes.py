"""IM-compatible REST routes (paths, content types and status codes as IM's), plus Orbis's own
JSON view under /orbis/."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orbis import __version__
from orbis.api.negotiation import (
    RADL_TYPES,
    TOSCA_TYPES,
    ApiError,
    answer,
    base_url,
    empty,
    flag,
    media_types,
    uri_list,
    wants,
)
from orbis.api.radl_view import node_radl, to_radl_text
from orbis.auth import AuthError, Identity, identify
from orbis.service import OrbisService

router = APIRouter()
TEMPLATE_NAME_HEADER = "x-orbis-template-name"  # lets error positions name the user's file


def service(request: Request) -> OrbisService:
    svc: OrbisService = request.app.state.service
    return svc


def caller(request: Request, *, collection: bool = False) -> Identity:
    """The authenticated user; IM answers 401 on collection routes and 400 elsewhere."""
    try:
        who, _lines = identify(request.headers.get("authorization"))
    except AuthError as exc:
        missing = not request.headers.get("authorization")
        raise ApiError(401 if (collection or missing) else 400, str(exc)) from exc
    return who


def infra_uri(request: Request, infra_id: str) -> str:
    return f"{base_url(request)}infrastructures/{infra_id}"


@router.get("/version")
async def version(request: Request) -> Response:
    return answer(request, "text/plain", "version", __version__)


@router.get("/infrastructures")
async def list_infrastructures(request: Request) -> Response:
    who = caller(request, collection=True)
    ids = service(request).list_ids(who)
    return uri_list(request, [infra_uri(request, i) for i in ids])


@router.post("/infrastructures")
async def create_infrastructure(request: Request) -> Response:
    who = caller(request, collection=True)
    kinds = media_types(request.headers.get("content-type"))
    if kinds and not any(k in TOSCA_TYPES | RADL_TYPES | {"application/json"} for k in kinds):
        raise ApiError(415, f"Unsupported Media Type {request.headers.get('content-type')}")
    wants(request, "text/uri-list")  # refuse an unservable Accept before creating anything
    body = (await request.body()).decode("utf-8", errors="replace")
    if flag(request, "dry_run"):
        raise ApiError(400, "Error Creating Inf.: dry_run is not supported yet")
    name = request.headers.get(TEMPLATE_NAME_HEADER, "template.yaml")
    infra_id = await service(request).create(
        who, body, name, wait_launch=not flag(request, "async")
    )
    response = uri_list(request, [infra_uri(request, infra_id)], single=True)
    response.headers["InfID"] = infra_id
    return response


@router.get("/infrastructures/{infra_id}")
async def infrastructure_vms(request: Request, infra_id: str) -> Response:
    who = caller(request)
    nodes = service(request).nodes(who, infra_id)
    uris = [f"{infra_uri(request, infra_id)}/vms/{n.vm_id}" for n in nodes]
    return uri_list(request, uris)


@router.delete("/infrastructures/{infra_id}")
async def destroy_infrastructure(request: Request, infra_id: str) -> Response:
    who = caller(request)
    await service(request).destroy(
        who, infra_id, wait=not flag(request, "async"), force=flag(request, "force")
    )
    return empty()


@router.get("/infrastructures/{infra_id}/{prop}")
async def infrastructure_property(request: Request, infra_id: str, prop: str) -> Response:
    who = caller(request)
    svc = service(request)
    if prop == "state":
        view = svc.state(who, infra_id)
        wants(request, "application/json")
        body = {"state": {"state": view.state, "vm_states": view.vm_states}}
        return Response(json.dumps(body), media_type="application/json")
    if prop == "contmsg":
        text = svc.contmsg(who, infra_id, headeronly=flag(request, "headeronly"))
        return answer(request, "text/plain", "contmsg", text)
    if prop == "outputs":
        wants(request, "application/json")
        body = {"outputs": svc.outputs(who, infra_id)}
        return Response(json.dumps(body, default=str), media_type="application/json")
    if prop == "tosca":
        row = svc.infrastructure(who, infra_id)
        if row.template_format != "tosca":
            raise ApiError(
                403, "'tosca' infrastructure property is not valid in this infrastructure"
            )
        return answer(request, "text/yaml", "tosca", row.template)
    if prop in ("radl", "data", "authorization"):
        svc.infrastructure(who, infra_id)
        raise ApiError(
            400, f"Error Getting Inf. prop: '{prop}' is not supported by this server yet"
        )
    raise ApiError(404, f"Incorrect infrastructure property: {prop}")


@router.get("/infrastructures/{infra_id}/vms/{vm_id}")
async def vm_info(request: Request, infra_id: str, vm_id: str) -> Response:
    who = caller(request)
    svc = service(request)
    objects = _vm_radl(svc, who, infra_id, vm_id)
    if wants(request, "text/plain") == "json":
        return Response(json.dumps({"radl": objects}), media_type="application/json")
    return Response(to_radl_text(objects), media_type="text/plain")


@router.get("/infrastructures/{infra_id}/vms/{vm_id}/{prop}")
async def vm_property(request: Request, infra_id: str, vm_id: str, prop: str) -> Response:
    who = caller(request)
    svc = service(request)
    if prop == "contmsg":
        return answer(request, "text/plain", "contmsg", svc.node(who, infra_id, vm_id).log)
    system = _vm_radl(svc, who, infra_id, vm_id)[-1]
    if prop not in system:
        raise ApiError(404, f"Invalid VM property: {prop}")
    return answer(request, "text/plain", prop, system[prop])


def _vm_radl(svc: OrbisService, who: Identity, infra_id: str, vm_id: str) -> list[dict]:
    row = svc.infrastructure(who, infra_id)
    node = svc.node(who, infra_id, vm_id)
    compute = svc.template(row).computes.get(node.name)
    return node_radl(node, compute, row.ssh_private_key)


# -- Orbis's own views (not in IM) -------------------------------------------------------------
@router.get("/orbis/infrastructures/{infra_id}")
async def orbis_detail(request: Request, infra_id: str) -> Response:
    """Infrastructure, nodes and steps in one JSON document (what `orbis deploy` follows)."""
    who = caller(request)
    return Response(
        json.dumps(service(request).detail(who, infra_id)), media_type="application/json"
    )


@router.get("/orbis/infrastructures/{infra_id}/events")
async def orbis_events(request: Request, infra_id: str, after: int = 0) -> Response:
    """Every recorded state transition, oldest first, after event id `after`."""
    who = caller(request)
    svc = service(request)
    svc.infrastructure(who, infra_id)
    events = [
        {
            "id": e.id,
            "at": e.at.isoformat(),
            "subject": e.subject,
            "vm_id": e.vm_id,
            "name": e.name,
            "from": e.from_state,
            "to": e.to_state,
            "message": e.message,
        }
        for e in svc.store.events(infra_id, after)
    ]
    return Response(json.dumps({"events": events}), media_type="application/json")
