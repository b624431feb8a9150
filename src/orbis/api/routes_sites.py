"""The site catalogue (not in IM): the caller's sites with their images, flavors and quotas."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from orbis.api.deps import AUTH_HEADER, caller, service

router = APIRouter(dependencies=[Depends(AUTH_HEADER)], tags=["orbis"])


@router.get("/orbis/sites")
async def orbis_sites(
    request: Request,
    refresh: bool = Query(False, description="ask the clouds again instead of the cache"),
    site: str | None = Query(None, description="only this site (an auth line id)"),
) -> Response:
    """Where the caller can deploy: each site of its auth data (and the server's own), with
    images, flavors and quotas, or the error the site answered. Credentials never appear."""
    who = await caller(request, collection=True)
    sites = await service(request).site_catalogue(who, refresh=refresh, site_id=site)
    return Response(json.dumps({"sites": sites}), media_type="application/json")
