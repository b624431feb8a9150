"""Every route: IM-compatible ones (paths, content types and status codes as IM's), plus
Orbis's own views under /orbis/. One module per resource; this one assembles them."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from orbis.api import (
    routes_functions,
    routes_infra,
    routes_login,
    routes_orbis,
    routes_other,
    routes_props,
    routes_quotas,
    routes_sites,
    routes_vms,
)
from orbis.api.deps import checked_path_ids

router = APIRouter(dependencies=[Depends(checked_path_ids)])  # ids: 404 unless well-formed
router.include_router(routes_other.router)
router.include_router(routes_other.secured)
router.include_router(routes_infra.router)
router.include_router(routes_vms.router)  # before the property route: /vms/{id} is longer
router.include_router(routes_props.router)
router.include_router(routes_orbis.router)
router.include_router(routes_functions.router)
router.include_router(routes_login.router)
router.include_router(routes_sites.router)
router.include_router(routes_quotas.router)
