"""The site catalogue as users see it: their sites with images, flavors and quotas."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from orbis.auth import Identity
from orbis.engine.machines import app_sites
from orbis.model.infrastructure import Template
from orbis.placement.sites import Site, SiteInfo
from orbis.service.core import ServiceBase
from orbis.service.errors import InvalidRequest


class SitesMixin(ServiceBase):
    async def site_catalogue(
        self, who: Identity, *, refresh: bool = False, site_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every site the caller may deploy on (its cloud lines, then the operator's), with
        what each offers. Answers come from the cache unless `refresh`."""
        sites = self.sites.sites_for(who.clouds)
        if site_id is not None:
            sites = [s for s in sites if s.id == site_id]
            if not sites:
                raise InvalidRequest(f"no site '{site_id}' in your auth data or the server's")
        infos = await asyncio.gather(
            *(asyncio.to_thread(self._site_info, s, refresh) for s in sites)
        )
        return [describe(info) for info in infos]

    async def site_info(self, who: Identity, site_id: str, *, refresh: bool = False) -> SiteInfo:
        """What one of the caller's sites offers (from the cache unless `refresh`)."""
        site = next((s for s in self.sites.sites_for(who.clouds) if s.id == site_id), None)
        if site is None:  # e.g. an EGI line, which stands for the sites it expands into
            raise InvalidRequest(f"no site '{site_id}' in your auth data or the server's")
        return await asyncio.to_thread(self._site_info, site, refresh)

    async def placement_preview(self, who: Identity, template: Template) -> dict[str, Any]:
        """Where each node of `template` would go, as a deployment would decide it now: the
        candidate sites best first (with the flavor that fits) and why each other site may
        not. Reads the sites' catalogues (through the 10-minute cache); creates nothing."""
        sites = self.sites.sites_for(who.clouds)
        nodes = []
        for name, compute in template.computes.items():
            ranking, warning = await self.deployer.rank_sites(compute, sites)
            nodes.append({
                "node": name, "count": compute.count,
                "sites": [{"id": c.site.id, "type": c.site.type, "flavor": c.flavor,
                           "checked": c.known_fit} for c in ranking.candidates],
                "excluded": ranking.excluded, "warnings": [warning] if warning else [],
            })  # fmt: skip
        for name, app in template.containers.items():
            clusters = app_sites(app, sites)
            nodes.append({
                "node": name, "count": 1,
                "sites": [{"id": s.id, "type": s.type, "flavor": None, "checked": True}
                          for s in clusters[:1]],
                "excluded": {} if clusters else {
                    app.cloud_id or "*": "a container app needs a Kubernetes site"},
                "warnings": [],
            })  # fmt: skip
        return {"nodes": nodes, "warnings": [f"{s.id}: {s.warning}" for s in sites if s.warning]}

    def _site_info(self, site: Site, refresh: bool) -> SiteInfo:
        if site.local:  # the server's own back-end: its node image, this machine's size
            provider = self.sites.provider(site)
            return SiteInfo(site, provider.flavors(), provider.images(), provider.quotas())
        return self.sites.info(site, refresh=refresh)


def describe(info: SiteInfo) -> dict[str, Any]:
    site = info.site
    return {
        "id": site.id,
        "type": site.type,
        "host": site.host,
        "shared": site.shared,
        "warning": site.warning,
        "error": info.error,
        "images": [asdict(i) for i in info.images],
        "flavors": [{k: v for k, v in asdict(f).items() if k != "extra"} for f in info.flavors],
        "quotas": {k: {"used": q.used, "limit": q.limit} for k, q in info.quotas.items()},
    }
