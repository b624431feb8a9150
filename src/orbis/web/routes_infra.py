"""The user's infrastructures: the list, one infrastructure's page (live from the event stream),
its outputs, node logs, node actions, adding nodes, reconfiguring, and destroying."""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orbis.api.routes_login import parse_jump
from orbis.api.routes_orbis import _events as event_stream
from orbis.api.stream_slots import HeldStreamingResponse, StreamSlots
from orbis.paths import is_safe_id
from orbis.service import InvalidRequest, NotFoundError, OrbisService, ServiceError
from orbis.web.pages import (
    SECURITY_HEADERS,
    WebRoute,
    form_of,
    identity,
    page,
    redirect,
    service,
    user_session,
)

log = logging.getLogger(__name__)
router = APIRouter(route_class=WebRoute, include_in_schema=False)
NODE_ACTIONS = ("stop", "start", "reboot", "remove")
MAX_COUNT = 1000


def _checked(infra_id: str) -> str:
    if not is_safe_id(infra_id):
        raise NotFoundError("Invalid infrastructure ID or access not granted.")
    return infra_id


@router.get("/ui/infrastructures")
async def listing(request: Request) -> Response:
    user_session(request)
    who = await identity(request)
    svc = service(request)
    rows = []
    for infra_id in svc.list_ids(who):
        try:
            rows.append(svc.detail(who, infra_id))
        except ServiceError:
            continue  # destroyed meanwhile
    rows.sort(key=lambda d: d["created_at"], reverse=True)
    return page(request, "infrastructures.html", title="Infrastructures", rows=rows)


def _ssh(svc: OrbisService, infra_id: str, node: Any) -> str | None:
    """A command that logs in to the node with the infrastructure's key (saved as a file)."""
    jump = parse_jump(node.jump)
    address = node.private_ip if jump else node.public_ip or node.private_ip
    if not address:
        return None
    key = f"orbis-{infra_id[:8]}.key"
    parts = ["ssh", "-i", key, "-p", str(node.ssh_port or 22)]
    if jump:
        proxy = (f"ssh -i {key} -p {jump['port']} -W %h:%p {jump['user']}@{jump['address']}")
        parts += ["-o", f"ProxyCommand={proxy}"]
    parts.append(f"{node.ssh_user or 'root'}@{address}")
    return shlex.join(parts)


def _view(request: Request, who: Any, infra_id: str) -> dict[str, Any]:
    svc = service(request)
    detail = svc.detail(who, infra_id)
    nodes = {n.vm_id: n for n in svc.nodes(who, infra_id)}
    for node in detail["nodes"]:
        row = nodes.get(node["vm_id"])
        node["ssh"] = _ssh(svc, infra_id, row) if row is not None else None
    template = svc.template(svc.infrastructure(who, infra_id))
    detail["computes"] = {name: c.count for name, c in template.computes.items()}
    return detail


@router.get("/ui/infrastructures/{infra_id}")
async def infrastructure(request: Request, infra_id: str) -> Response:
    user_session(request)
    who = await identity(request)
    view = _view(request, who, _checked(infra_id))
    return page(request, "infrastructure.html", title=view["name"] or infra_id, infra=view,
                outputs=_outputs(request, who, infra_id))  # fmt: skip


def _outputs(request: Request, who: Any, infra_id: str) -> dict[str, Any] | str:
    """The outputs, or why there are none yet (an error text)."""
    try:
        return service(request).outputs(who, infra_id)
    except ServiceError as exc:
        return str(exc)
    except Exception as exc:  # an attribute not known yet (no address before launch)
        return f"not available yet ({type(exc).__name__})"


@router.get("/ui/infrastructures/{infra_id}/nodes")
async def nodes_fragment(request: Request, infra_id: str) -> Response:
    """The node rows alone (the page swaps them in as the stream reports changes)."""
    user_session(request)
    who = await identity(request)
    view = _view(request, who, _checked(infra_id))
    return page(request, "fragments/nodes.html", infra=view)


@router.get("/ui/infrastructures/{infra_id}/outputs")
async def outputs_fragment(request: Request, infra_id: str) -> Response:
    user_session(request)
    who = await identity(request)
    service(request).infrastructure(who, _checked(infra_id))  # someone else's: 403/404
    return page(request, "fragments/outputs.html", infra={"id": infra_id},
                outputs=_outputs(request, who, infra_id))  # fmt: skip


@router.get("/ui/infrastructures/{infra_id}/stream")
async def stream(request: Request, infra_id: str) -> Response:
    """The API's event stream (detail, event, end), for the logged-in user."""
    user_session(request)
    who = await identity(request)
    svc = service(request)
    svc.infrastructure(who, _checked(infra_id))
    slots: StreamSlots = request.app.state.stream_slots
    return HeldStreamingResponse(
        slots.open(who.key, event_stream(request, svc, who, infra_id, 0, True)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/ui/infrastructures/{infra_id}/nodes/{vm_id}/log")
async def node_log(request: Request, infra_id: str, vm_id: str) -> Response:
    """One node's contextualization log (IM's contmsg of the VM)."""
    user_session(request)
    who = await identity(request)
    node = service(request).node(who, _checked(infra_id), vm_id)
    return page(request, "log.html", title=f"{node.name} (VM {node.vm_id}): log",
                infra_id=infra_id, node=node, text=node.log or "")  # fmt: skip


@router.get("/ui/infrastructures/{infra_id}/key")
async def private_key(request: Request, infra_id: str) -> Response:
    """The infrastructure's SSH private key, as a file to save (the SSH command names it)."""
    user_session(request)
    who = await identity(request)
    svc = service(request)
    row = svc.infrastructure(who, _checked(infra_id))
    response = Response(svc.private_key(row), media_type="application/octet-stream")
    response.headers["Content-Disposition"] = f'attachment; filename="orbis-{infra_id[:8]}.key"'
    response.headers.update(SECURITY_HEADERS)
    return response


def _background(request: Request, work: Coroutine[Any, Any, Any], what: str) -> None:
    """Run a request that waits for the engine; the page follows it through the stream."""
    tasks: set[asyncio.Task[Any]] = request.app.state.web_tasks

    async def run() -> None:
        try:
            await work
        except ServiceError as exc:
            log.warning("dashboard %s: %s", what, exc)

    task = asyncio.get_running_loop().create_task(run())
    tasks.add(task)
    task.add_done_callback(tasks.discard)


@router.post("/ui/infrastructures/{infra_id}/action")
async def action(request: Request, infra_id: str) -> Response:
    """stop, start, reboot or remove one node (`vm`), or stop/start/reboot/reconfigure all."""
    user_session(request)
    form = await form_of(request)
    who = await identity(request)
    svc = service(request)
    svc.infrastructure(who, _checked(infra_id))
    op = str(form.get("op") or "")
    vm = str(form.get("vm") or "")
    if vm:
        node = svc.node(who, infra_id, vm)
        if op not in NODE_ACTIONS:
            raise InvalidRequest(f"Unknown node action: {op}")
        if op == "remove":
            _background(request, svc.remove_nodes(who, infra_id, [node.vm_id]), op)
        else:
            _background(request, svc.power(who, infra_id, op, node.vm_id), op)
    elif op == "reconfigure":
        await svc.reconfigure(who, infra_id)
    elif op in ("stop", "start", "reboot"):
        _background(request, svc.power(who, infra_id, op), op)
    else:
        raise InvalidRequest(f"Unknown action: {op}")
    return redirect(request, f"/ui/infrastructures/{infra_id}")


@router.post("/ui/infrastructures/{infra_id}/scale")
async def scale(request: Request, infra_id: str) -> Response:
    """Set the number of instances of one node template (adds or removes nodes)."""
    user_session(request)
    form = await form_of(request)
    who = await identity(request)
    svc = service(request)
    svc.infrastructure(who, _checked(infra_id))
    try:
        count = int(str(form.get("count") or ""))
    except ValueError:
        raise InvalidRequest("The number of nodes must be a whole number") from None
    if not 0 <= count <= MAX_COUNT:
        raise InvalidRequest(f"The number of nodes must be between 0 and {MAX_COUNT}")
    _background(request, svc.scale(who, infra_id, str(form.get("node") or ""), count), "scale")
    return redirect(request, f"/ui/infrastructures/{infra_id}")


@router.post("/ui/infrastructures/{infra_id}/destroy")
async def destroy(request: Request, infra_id: str) -> Response:
    """Destroy, once the confirmation box is ticked; back to the list, which shows it going."""
    user_session(request)
    form = await form_of(request)
    who = await identity(request)
    if form.get("confirm") != "yes":
        raise InvalidRequest("Tick the confirmation box to destroy the infrastructure.")
    await service(request).destroy(who, _checked(infra_id), wait=False)
    return redirect(request, "/ui/infrastructures")
