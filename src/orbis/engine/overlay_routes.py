"""The clouds' side of the overlay: each site's router made a router on its cloud too.

On a cloud, a node that forwards others' packets is stopped by the cloud's anti-spoofing, and
the site's other machines learn routes from the cloud's network (DHCP host routes, a VPC route
table) rather than only from the overlay's setup. So after the overlay is set up, each site
router gets, through its provider's `route_through` (OpenStack: port security off and subnet
host routes; EC2: SourceDestCheck off and route-table entries), the other sites' subnets and
the overlay pools. The local back-end's nodes route by themselves: its provider does nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from orbis.overlay.model import Overlay
from orbis.overlay.setup import plan
from orbis.overlay.state import OverlayState
from orbis.providers.base import Provider, ProviderError
from orbis.store.schema import NodeRow

RouteCall = Callable[[NodeRow, list[str]], Awaitable[tuple[str, ...]]]
NodeLog = Callable[[NodeRow, str], None]


def site_routes(overlay: Overlay, rows: list[NodeRow],
                known: OverlayState | None) -> list[tuple[NodeRow, list[str]]]:  # fmt: skip
    """(router row, CIDRs it routes on its cloud) for each site with a router: the subnets of
    the other sites (as the overlay measured them) and every central point's pool."""
    live = [r for r in rows if not r.deleted and r.provider_id and (r.private_ip or r.public_ip)]
    subnets = known.site_subnets if known else {}
    pools = [cp.subnet for cp in overlay.central_points]
    found = []
    for site, row in sorted(plan(overlay, live).routers.items()):
        cidrs = [c for s, c in sorted(subnets.items()) if s != site] + pools
        found.append((row, list(dict.fromkeys(cidrs))))
    return found


def stale_routes(known: OverlayState | None, row: NodeRow, cidrs: list[str]) -> list[str]:
    """What the cloud routes through router `row` (as recorded after an earlier pass) that it
    no longer should: the subnet of a site that is gone, a pool no longer served. A router
    made anew is another machine: its predecessor's routes went when it was destroyed."""
    if known is None:
        return []
    before = known.cloud_routes.get(row.provider_id or "", [])
    return [c for c in before if c not in cidrs]


def remember_routes(known: OverlayState, routes: list[tuple[NodeRow, list[str]]],
                    failed: set[int]) -> None:  # fmt: skip
    """Record what each router's cloud routes now (a refused one: what it had before and what
    was asked, as a partial update may have made some); machines that route nothing now are
    forgotten."""
    kept = {}
    for row, cidrs in routes:
        pid = row.provider_id or ""
        before = [] if row.vm_id not in failed else known.cloud_routes.get(pid, [])
        kept[pid] = list(dict.fromkeys([*before, *cidrs]))
    known.cloud_routes = kept


def routes_on_cloud(provider: Provider) -> bool:
    """Whether the provider has anything to do for a router (the local back-end has not)."""
    return type(provider).route_through is not Provider.route_through


async def route_sites(routes: list[tuple[NodeRow, list[str]]], route: RouteCall,
                      node_log: NodeLog) -> set[int]:  # fmt: skip
    """Ask each router's cloud to route its CIDRs through it; the vm ids the cloud refused
    (their logs say why, and warnings of CIDRs skipped go there too)."""
    failed: set[int] = set()
    for row, cidrs in routes:
        try:
            warnings = await route(row, cidrs)
        except ProviderError as exc:
            node_log(row, f"Error: overlay: the cloud did not make this node its site's "
                     f"router: {exc}")  # fmt: skip
            failed.add(row.vm_id)
            continue
        for warning in warnings:
            node_log(row, f"Warning: overlay: {warning}")
        node_log(row, f"Overlay: the cloud routes {', '.join(cidrs)} through this node")
    return failed
