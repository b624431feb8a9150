"""Version, docs, clouds (images, quotas) and usage statistics."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import Response

from orbis import __version__
from orbis.api.deps import AUTH_HEADER, caller, service, settings
from orbis.api.negotiation import ApiError, answer, media_types, wants
from orbis.auth import Identity
from orbis.placement.sites import LOCAL_TYPES, SiteInfo
from orbis.providers.base import Image
from orbis.service import ServiceError

router = APIRouter()
secured = APIRouter(dependencies=[Depends(AUTH_HEADER)])
STATS_FIELDS = ["creation_date", "tosca_name", "vm_count", "cpu_count", "memory_size",
                "cloud_type", "cloud_host", "hybrid", "deleted", "im_user", "inf_id",
                "last_date"]  # fmt: skip


@router.get("/version", tags=["service"])
async def version(request: Request) -> Response:
    """The server version (no authentication), bare text or `{"version": ...}`."""
    return answer(request, "text/plain", "version", __version__)


@router.get("/", include_in_schema=False)
async def root(request: Request) -> Response:
    """IM 1.x answers the OpenAPI document; a browser gets Swagger UI (as IM 2.0)."""
    if "text/html" in media_types(request.headers.get("accept")):
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Orbis API")
    return Response(json.dumps(request.app.openapi()), media_type="application/json")


def _cloud(who: Identity, cloud_id: str) -> dict[str, str]:
    line = next((c for c in who.clouds if c.get("id") == cloud_id), None)
    if line is None:
        raise ApiError(400, f"Error getting cloud info: no auth line with id '{cloud_id}'")
    return line


async def _site_info(request: Request, who: Identity, cloud_id: str) -> SiteInfo:
    """What a cloud site offers (the site catalogue's cache); 400 with the site's error."""
    try:
        info = await service(request).site_info(who, cloud_id)
    except ServiceError as exc:
        raise ApiError(400, f"Error getting cloud info: {exc}") from exc
    if info.error:
        raise ApiError(400, f"Error getting cloud info: {info.error}")
    return info


def _matches(image: Image, filters: dict[str, str]) -> bool:
    """IM's filters: distribution / version / name as case-insensitive substrings."""
    fields = {"distribution": image.os_distro or image.name, "version": image.os_version
              or image.name, "name": image.name}  # fmt: skip
    return all(v.lower() in (fields.get(k) or "").lower() for k, v in filters.items()
               if k in fields)  # fmt: skip


@secured.get("/clouds/{cloudId}/images", tags=["clouds"])
async def cloud_images(
    request: Request, cloudId: str, filters: str | None = Query(None, description="k1=v1,k2=v2")
) -> Response:
    """Images of a cloud named by an auth line's id; the local back-end has its node image."""
    who = await caller(request, collection=True)
    wants(request, "application/json")
    if filters is not None and not all(
        len(part.split("=")) == 2 and part.split("=")[0] for part in filters.split(",")
    ):
        raise ApiError(400, "Invalid format in filters parameter.")
    line = _cloud(who, cloudId)
    if line.get("type", "").lower() in LOCAL_TYPES:
        image = settings(request).node_image
        images = [{"uri": f"docker://{image}", "name": f"Orbis local node image ({image})"}]
    else:
        wanted = dict(part.split("=") for part in filters.split(",")) if filters else {}
        found = (await _site_info(request, who, cloudId)).images
        images = [{"uri": i.url, "name": i.name} for i in found if _matches(i, wanted)]
    return Response(json.dumps({"images": images}), media_type="application/json")


@secured.get("/clouds/{cloudId}/quotas", tags=["clouds"])
async def cloud_quotas(request: Request, cloudId: str) -> Response:
    """Use and limits of a cloud; for the local back-end, this machine's."""
    who = await caller(request, collection=True)
    wants(request, "application/json")
    line = _cloud(who, cloudId)
    if line.get("type", "").lower() not in LOCAL_TYPES:
        info = await _site_info(request, who, cloudId)
        quotas = {k: {"used": q.used, "limit": q.limit} for k, q in info.quotas.items()}
        return Response(json.dumps({"quotas": quotas}), media_type="application/json")
    svc = service(request)
    nodes = sum(len(svc.store.nodes(i)) for i in svc.list_ids(who))
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    quotas = {
        "cores": {"used": nodes, "limit": os.cpu_count() or 1},
        "ram": {"used": 0, "limit": memory},
        "instances": {"used": nodes, "limit": -1},
    }
    return Response(json.dumps({"quotas": quotas}), media_type="application/json")


def _clouds_used(svc: Any, infra_id: str, default: str, nodes: list[Any]) -> tuple[str, str, bool]:
    """IM's cloud_type / cloud_host of the first VM's cloud, and whether VMs are on several."""
    sites = list(dict.fromkeys(n.site for n in nodes))  # None: the server's own back-end
    if not sites or sites[0] is None:
        return default, "localhost" if default == "local" else "", len(sites) > 1
    lines: list[dict[str, str]] = svc.cloud_credentials(infra_id)
    line = next((c for c in lines if c.get("id") == sites[0]), {})
    host = urlsplit(line.get("host", "")).hostname or line.get("host", "")
    return line.get("type", sites[0]), host, len(sites) > 1


def _date(raw: str | None, name: str, default: datetime | None) -> datetime | None:
    if raw is None:
        return default
    for fmt in ("%Y-%m-%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ApiError(400, f"Incorrect value in {name} parameter")


@secured.get("/stats", tags=["service"])
async def stats(
    request: Request,
    init_date: str | None = Query(None, description="YYYY-MM-DD"),
    end_date: str | None = Query(None, description="YYYY-MM-DD"),
) -> Response:
    """Usage per infrastructure of the caller (all, for an administrator): JSON or CSV."""
    who = await caller(request)
    since = _date(init_date, "init_date", datetime(1970, 1, 1, tzinfo=UTC))
    until = _date(end_date, "end_date", None)
    kind = _stats_kind(request)
    svc = service(request)
    keys = None if who.admin else list(who.keys or (who.key,))
    rows: list[dict[str, Any]] = []
    assert since is not None
    for row, nodes in svc.store.rows_for_stats(keys, since, until and until + timedelta(days=1)):
        try:
            computes = svc.template(row).computes
        except Exception:  # a template this version cannot read still counts its VMs
            computes = {}
        cpus = sum((computes[n.name].num_cpus or 1) if n.name in computes else 1 for n in nodes)
        memory = sum(
            int((computes[n.name].mem_size or 0) / 2**20) if n.name in computes else 0
            for n in nodes
        )
        cloud_type, cloud_host, hybrid = _clouds_used(svc, row.id, row.provider, nodes)
        rows.append(
            {
                "creation_date": row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                "tosca_name": row.name,
                "vm_count": len(nodes),
                "cpu_count": cpus,
                "memory_size": memory,
                "cloud_type": cloud_type,
                "cloud_host": cloud_host,
                "hybrid": hybrid,
                "deleted": row.deleted,
                "im_user": row.owner_name,
                "inf_id": row.id,
                "last_date": row.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )
    if kind == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=STATS_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        return Response(buf.getvalue(), media_type="text/csv")
    return Response(json.dumps({"stats": rows}), media_type="application/json")


def _stats_kind(request: Request) -> str:
    accepted = media_types(request.headers.get("accept"))
    for media in accepted or ["application/json"]:
        if media in ("application/json", "application/*", "*/*"):
            return "json"
        if media in ("text/csv", "text/*"):
            return "csv"
    raise ApiError(415, f"Unsupported Accept Media Types: {', '.join(accepted)}")
