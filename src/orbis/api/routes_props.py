"""`GET /infrastructures/{infId}/{prop}`: IM's infrastructure properties."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from orbis.api.deps import AUTH_HEADER, caller, service
from orbis.api.negotiation import ApiError, answer, flag, wants
from orbis.auth import Identity
from orbis.service import OrbisService

router = APIRouter(dependencies=[Depends(AUTH_HEADER)], tags=["infrastructures"])
PROPS = ("state", "contmsg", "radl", "tosca", "outputs", "data", "authorization")


def _json(body: Any) -> Response:
    return Response(json.dumps(body, default=str), media_type="application/json")


def radl_writer() -> Callable[[Any], str] | None:
    """`orbis.lang.radl.writer.to_radl`, once that module exists."""
    try:
        module = importlib.import_module("orbis.lang.radl.writer")
    except ImportError:
        return None
    writer: Callable[[Any], str] | None = getattr(module, "to_radl", None)
    return writer


@router.get("/infrastructures/{infId}/{prop}")
async def infrastructure_property(
    request: Request,
    infId: str,
    prop: str = Path(description=", ".join(PROPS)),
    headeronly: str | None = Query(None, description="contmsg: no per-VM logs"),
    delete: str | None = Query(None, description="data: forget the infrastructure after export"),
    format: str | None = Query(None, description="data: 'orbis' (the default) or 'im' (IM's form)"),
) -> Response:
    """One property; `state`, `outputs` and `data` are JSON only, the others follow Accept."""
    who = await caller(request)
    svc = service(request)
    if prop not in PROPS:
        svc.infrastructure(who, infId)  # unknown, deleted or not yours first, as IM
        raise ApiError(404, f"Incorrect infrastructure property: {prop}")
    return await _PROPERTY[prop](request, svc, who, infId)


async def _state(request: Request, svc: OrbisService, who: Identity, infra_id: str) -> Response:
    view = svc.state(who, infra_id)  # (checks access: unknown/not yours before a bad Accept)
    wants(request, "application/json")
    return _json({"state": {"state": view.state, "vm_states": view.vm_states}})


async def _contmsg(request: Request, svc: OrbisService, who: Identity, infra_id: str) -> Response:
    text = svc.contmsg(who, infra_id, headeronly=flag(request, "headeronly"))
    wants(request, "text/plain")
    return answer(request, "text/plain", "contmsg", text)


async def _outputs(request: Request, svc: OrbisService, who: Identity, infra_id: str) -> Response:
    outputs = svc.outputs(who, infra_id)
    wants(request, "application/json")
    return _json({"outputs": outputs})


async def _tosca(request: Request, svc: OrbisService, who: Identity, infra_id: str) -> Response:
    row = svc.infrastructure(who, infra_id)
    wants(request, "text/yaml")
    if row.template_format != "tosca":
        raise ApiError(403, "'tosca' infrastructure property is not valid in this infrastructure")
    return answer(request, "text/yaml", "tosca", row.template)


async def _radl(request: Request, svc: OrbisService, who: Identity, infra_id: str) -> Response:
    row = svc.infrastructure(who, infra_id)
    wants(request, "text/plain")
    writer = radl_writer()
    if writer is None:
        raise ApiError(400, "Error Getting Inf. prop: RADL output is not supported yet")
    return answer(request, "text/plain", "radl", writer(svc.template(row)))


async def _data(request: Request, svc: OrbisService, who: Identity, infra_id: str) -> Response:
    svc.infrastructure(who, infra_id)
    wants(request, "application/json")  # before an export that may delete
    form = request.query_params.get("format") or "orbis"
    data = await svc.export(who, infra_id, delete=flag(request, "delete"), form=form)
    return _json({"data": data})


async def _authorization(
    request: Request, svc: OrbisService, who: Identity, infra_id: str
) -> Response:
    owners = svc.authorization(who, infra_id)
    wants(request, "text/plain")
    return answer(request, "text/plain", "authorization", owners)


_PROPERTY = {
    "state": _state,
    "contmsg": _contmsg,
    "outputs": _outputs,
    "tosca": _tosca,
    "radl": _radl,
    "data": _data,
    "authorization": _authorization,
}
