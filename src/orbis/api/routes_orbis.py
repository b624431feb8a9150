"""Orbis's own views (not in IM): one-document detail, the events timeline, a live
server-sent-events stream, and the plan preview."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from orbis.api import plan_view
from orbis.api.deps import (
    AUTH_HEADER,
    TEMPLATE_BODY,
    TEMPLATE_NAME_HEADER,
    body_kind,
    caller,
    read_body,
    service,
)
from orbis.api.negotiation import flag
from orbis.api.stream_slots import HeldStreamingResponse, StreamSlots
from orbis.auth import Identity
from orbis.model.states import settled
from orbis.service import OrbisService, ServiceError
from orbis.store.schema import EventRow

router = APIRouter(dependencies=[Depends(AUTH_HEADER)], tags=["orbis"])
POLL = 0.2  # seconds between looks at the events table
KEEP_ALIVE = 15.0


def _json(body: Any) -> Response:
    return Response(json.dumps(body), media_type="application/json")


def event_dict(e: EventRow) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "subject": e.subject,
        "vm_id": e.vm_id,
        "name": e.name,
        "from": e.from_state,
        "to": e.to_state,
        "message": e.message,
    }


def elastic_dict(e: EventRow) -> dict[str, Any]:
    """An elastic decision as the stream's `elastic` event carries it (docs/elastic.md)."""
    return {"id": e.id, "at": e.at.isoformat(), "action": e.to_state, "reason": e.message,
            "pool": e.name or None, "vm_id": e.vm_id}  # fmt: skip


@router.post("/orbis/infrastructures/{infId}/retry")
async def orbis_retry(request: Request, infId: str) -> Response:
    """Launch failed nodes again and reconfigure unconfigured ones; answers their VM ids."""
    who = await caller(request)
    return _json({"vm_ids": await service(request).retry(who, infId)})


@router.get("/orbis/infrastructures/{infId}")
async def orbis_detail(request: Request, infId: str) -> Response:
    """Infrastructure, nodes and steps in one JSON document."""
    who = await caller(request)
    return _json(service(request).detail(who, infId))


@router.get("/orbis/infrastructures/{infId}/elastic")
async def orbis_elastic(request: Request, infId: str) -> Response:
    """An elastic cluster's pools, knobs, workers (Orbis and Slurm states), pending jobs and
    the latest power on/off decisions with their reasons (docs/elastic.md)."""
    who = await caller(request)
    return _json(service(request).elastic(who, infId))


@router.get("/orbis/infrastructures/{infId}/events")
async def orbis_events(request: Request, infId: str, after: int = Query(0, ge=0)) -> Response:
    """Every recorded state transition, oldest first, after event id `after`."""
    who = await caller(request)
    svc = service(request)
    svc.infrastructure(who, infId)
    return _json({"events": [event_dict(e) for e in svc.store.events(infId, after)]})


def sse(kind: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n"


@router.get(
    "/orbis/infrastructures/{infId}/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def orbis_stream(
    request: Request,
    infId: str,
    follow: str | None = Query(None, description="keep going after it settles"),
    after: int = Query(0, ge=0, description="replay events after this id"),
) -> StreamingResponse:
    """Server-sent events: `detail` (the whole view) first and after every change, `event`
    for each state change of the infrastructure, a node or a step, `elastic` for each decision
    of an elastic cluster's monitor (action, reason, pool, VM), and `end` once the
    infrastructure settles (never, with `follow`)."""
    who = await caller(request)
    svc = service(request)
    svc.infrastructure(who, infId)
    keep_going = flag(request, "follow")
    slots: StreamSlots = request.app.state.stream_slots
    return HeldStreamingResponse(
        slots.open(who.key, _events(request, svc, who, infId, after, keep_going)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    request: Request, svc: OrbisService, who: Identity, infra_id: str, last: int, follow: bool
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    detail = svc.detail(who, infra_id)
    yield sse("detail", detail)
    first = True
    while True:
        # the events recorded after `last` come first, even when the infrastructure has
        # already settled: a client that connects late (another server did the work, or it
        # was slow to connect) still gets the history it asked for
        events = svc.store.events(infra_id, last)
        for e in events:
            last = e.id
            if e.subject == "elastic":  # an elastic monitor's decision, with its reason
                yield sse("elastic", elastic_dict(e), e.id)
            else:
                yield sse("event", event_dict(e), e.id)
        if not first:
            try:
                latest = svc.detail(who, infra_id)
            except ServiceError as exc:  # destroyed (or access withdrawn) meanwhile
                yield sse("end", {"state": "deleted", "message": str(exc)})
                return
            if events or latest != detail:  # some changes (aggregate state) leave no event
                detail = latest
                quiet_since = loop.time()
                yield sse("detail", detail)
            elif loop.time() - quiet_since > KEEP_ALIVE:
                quiet_since = loop.time()
                yield ": keep-alive\n\n"
        first = False
        if not follow and settled(detail):
            break
        await asyncio.sleep(POLL)
        if await request.is_disconnected():
            return
    yield sse("end", {"state": detail["state"]})


@router.post("/orbis/plan", openapi_extra=TEMPLATE_BODY)
async def orbis_plan(
    request: Request,
    infId: str | None = Query(None, description="plan an update of this infrastructure"),
    merge: str | None = Query(None, description="merge with the stored TOSCA (as add resources)"),
    sites: str | None = Query(
        None,
        description="also say where each node would go: candidate "
        "sites best first, and why not the others (reads the sites' "
        "catalogues, cached 10 min)",
    ),
) -> Response:
    """What a create (or an update of `infId`) would create, change or remove; computed from
    the templates and the stored nodes, without touching any cloud (unless `sites`, which only
    reads the sites' catalogues)."""
    who = await caller(request)
    body_kind(request)
    svc = service(request)
    text = await read_body(request)
    name = request.headers.get(TEMPLATE_NAME_HEADER, "template.yaml")
    placement = flag(request, "sites")
    if infId is None:
        template, _ = await svc.parse_async(text, name)
        svc.check_quota(who.key, sum(template.counts().values()))  # as the create would
        result = {"infrastructure": None, **plan_view.plan(template)}
    else:
        row = svc.infrastructure(who, infId)
        merge_with = row.template if flag(request, "merge", True) and row.template_format == \
            "tosca" else None  # fmt: skip
        _, _, parsed = await svc.parse_update_async(text, name, merge_with)
        template = parsed if parsed is not None else (await svc.parse_async(text, name))[0]
        total = sum(template.counts().values())
        if total > len(svc.store.nodes(row.id)):
            svc.check_quota(row.owner_key, total, row.id)
        changes = plan_view.plan(template, svc.template(row), svc.store.nodes(row.id))
        result = {"infrastructure": infId, **changes}
    if placement:
        result["placement"] = await svc.placement_preview(who, template)
    return _json(result)
