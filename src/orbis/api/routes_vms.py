"""IM's VM routes: information, properties, alter, removal and power operations."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from orbis.api.deps import (
    AUTH_HEADER,
    TEMPLATE_BODY,
    body_kind,
    caller,
    parse_ids,
    read_body,
    service,
)
from orbis.api.negotiation import ApiError, answer, empty, flag, wants
from orbis.api.radl_view import node_radl, to_radl_text
from orbis.auth import Identity
from orbis.service import OrbisService

router = APIRouter(dependencies=[Depends(AUTH_HEADER)], tags=["vms"])
VM = "/infrastructures/{infId}/vms/{vmId}"


def vm_radl(svc: OrbisService, who: Identity, infra_id: str, vm_id: str) -> list[dict[str, Any]]:
    row = svc.infrastructure(who, infra_id)
    node = svc.node(who, infra_id, vm_id)
    compute = svc.template(row).computes.get(node.name)
    return node_radl(node, compute, svc.private_key(row))


def radl_answer(request: Request, objects: list[dict[str, Any]]) -> Response:
    if wants(request, "text/plain") == "json":
        return Response(json.dumps({"radl": objects}), media_type="application/json")
    return Response(to_radl_text(objects), media_type="text/plain")


@router.get(VM)
async def vm_info(request: Request, infId: str, vmId: str) -> Response:
    """The VM as RADL (text), or `{"radl": [...]}` in RADL's simple JSON form."""
    who = await caller(request)
    wants(request, "text/plain")
    return radl_answer(request, vm_radl(service(request), who, infId, vmId))


@router.put(VM, openapi_extra=TEMPLATE_BODY)
async def alter_vm(request: Request, infId: str, vmId: str) -> Response:
    """Change a VM's size (a RADL `system` with the new values); answers its RADL after."""
    who = await caller(request)
    body_kind(request)
    wants(request, "text/plain")
    svc = service(request)
    node = svc.node(who, infId, vmId)
    await svc.alter(who, infId, node.vm_id, await read_body(request))
    return radl_answer(request, vm_radl(svc, who, infId, vmId))


@router.delete(VM)
async def remove_vms(
    request: Request, infId: str, vmId: str, context: str | None = Query(None)
) -> Response:
    """Remove one VM, or several: `vmId` may be a comma-separated list (`1,3,4`)."""
    who = await caller(request)
    svc = service(request)
    svc.infrastructure(who, infId)
    vm_ids = parse_ids(vmId, "Invalid VM ID", 404)
    for vm_id in vm_ids:
        svc.node(who, infId, str(vm_id))
    await svc.remove_nodes(who, infId, vm_ids, context=flag(request, "context", True))
    return empty()


@router.get(VM + "/{prop}")
async def vm_property(
    request: Request, infId: str, vmId: str, prop: str, step: str | None = Query(None)
) -> Response:
    """A RADL attribute of the VM (`state`, `net_interface.0.ip`, ...) or its `contmsg`."""
    who = await caller(request)
    wants(request, "text/plain")
    svc = service(request)
    if prop == "contmsg":
        return answer(request, "text/plain", "contmsg", svc.node(who, infId, vmId).log)
    system = vm_radl(svc, who, infId, vmId)[-1]
    if prop not in system:
        raise ApiError(404, f"Invalid VM property: {prop}")
    return answer(request, "text/plain", prop, system[prop])


@router.put(VM + "/{op}")
async def vm_operation(request: Request, infId: str, vmId: str, op: str) -> Response:
    """`start`, `stop` or `reboot` one VM."""
    who = await caller(request)
    svc = service(request)
    node = svc.node(who, infId, vmId)
    if op not in ("start", "stop", "reboot"):
        raise ApiError(404, f"Incorrect VM operation: {op}")
    await svc.power(who, infId, op, node.vm_id)
    return empty()


@router.put(VM + "/disks/{diskNum}/snapshot")
async def snapshot(
    request: Request,
    infId: str,
    vmId: str,
    diskNum: str,
    image_name: str | None = Query(None),
    auto_delete: str | None = Query(None),
) -> Response:
    """Save a disk of the VM (0 = its boot disk) as an image at the VM's site; the answer is
    the new image's URL, which a template can name. `auto_delete` deletes the image when the
    infrastructure is destroyed."""
    who = await caller(request)
    svc = service(request)
    node = svc.node(who, infId, vmId)
    if not image_name:
        raise ApiError(400, "Incorrect value in image_name parameter")
    auto = flag(request, "auto_delete")
    try:
        disk = int(diskNum)
    except ValueError:
        raise ApiError(400, "Incorrect value in diskNum parameter") from None
    url = await svc.snapshot(who, infId, node.vm_id, disk, image_name, auto_delete=auto)
    return answer(request, "text/plain", "uri", url)
