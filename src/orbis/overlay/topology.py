"""Reading the overlay from a template, with the checks that point at file:line.

TOSCA: `tosca.nodes.indigo.VR.CentralPoint`, `VR.VRouter` and `VR.Client` components (their
upstream recipes and Galaxy role, fetched from GitHub at deploy time, are replaced by Orbis's
own setup, see setup.py). RADL: a network's `router = 'CIDR,system'` (IM's static route).
Language independent: both loaders call `read_overlay` on the finished model.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools

from orbis.lang.errors import Problems
from orbis.model.infrastructure import Compute, Position, Template
from orbis.overlay.model import (
    CENTRAL_POINT,
    CLIENT,
    DEFAULT_BACKUP_SUBNET,
    DEFAULT_SUBNET,
    VR_TYPES,
    VROUTER,
    CentralPoint,
    Member,
    Overlay,
    StaticRoute,
)

UPSTREAM_ROLE = "indigo-dc.indigovr"
MAX_CENTRAL_POINTS = 2  # a primary and its backup


def compute_site(compute: Compute) -> str | None:
    """The site a template pins a node to (placement cloud_id, or image local://SITE)."""
    if compute.cloud_id:
        return compute.cloud_id
    image = compute.image or ""
    if image.startswith("local://"):
        return image[len("local://"):].split("/", 1)[0] or None
    return None


def read_overlay(template: Template, problems: Problems) -> None:
    """Set template.overlay when the template has VR components or RADL routes; problems
    (at the positions written) go to `problems`."""
    overlay = Overlay()
    vr = [c for c in template.components.values() if c.type in VR_TYPES]
    for component in vr:  # Orbis sets the overlay up itself: no upstream recipes or role
        component.operations, component.artifacts = [], []
        compute = template.computes.get(component.host)
        if compute is not None:
            compute.galaxy_roles[:] = [r for r in compute.galaxy_roles
                                       if not r.startswith(UPSTREAM_ROLE)]  # fmt: skip
    points = [c for c in vr if c.type == CENTRAL_POINT]
    for number, component in enumerate(points):
        if number >= MAX_CENTRAL_POINTS:
            problems.add(component.position, f"a third central point '{component.name}': an "
                         "overlay has a primary and at most one backup")  # fmt: skip
            continue
        # upstream's indigovr_subnet is the cluster network pushed to clients, written as an
        # address ("192.168.0.0", a /16), its VPN pool fixed: a CIDR here is the pool instead
        raw = str(component.properties.get("indigovr_subnet") or "")
        subnet = _subnet(raw, component.position, problems) if "/" in raw else ""
        compute = template.computes[component.host]
        if not compute.public:  # IM deploys it: members of its own site can still reach it
            problems.warn(component.position, f"central point '{component.name}' is on "
                          f"'{compute.name}', which has no public address: members of other "
                          "sites cannot reach it (give its Compute a public endpoint, "
                          "network_name: PUBLIC)")  # fmt: skip
        overlay.central_points.append(CentralPoint(component.name, compute.name, subnet or "",
                                                   compute_site(compute),
                                                   component.position))  # fmt: skip
    names = {c.component for c in overlay.central_points}
    named: list[tuple[str, Position | None]] = []
    for component in vr:
        if component.type not in (VROUTER, CLIENT):
            continue
        kind = "VRouter" if component.type == VROUTER else "Client"
        target = next((t for _, t in component.requirements if t in names), None)
        if target is None:
            problems.add(component.position, f"{kind} '{component.name}' has no central point",
                         "add the requirement 'central_point: <a "
                         f"{CENTRAL_POINT} node>'")  # fmt: skip
            continue
        named.append((target, component.position))
        compute = template.computes[component.host]
        overlay.members.append(Member(component.name, compute.name, component.type == VROUTER,
                                      target, compute_site(compute),
                                      component.position))  # fmt: skip
    _order_central_points(overlay, named, problems)
    overlay.central_points = [  # unset pools: the primary's, the next one down for the backup
        c if c.subnet else dataclasses.replace(c, subnet=(DEFAULT_SUBNET, DEFAULT_BACKUP_SUBNET)[n])
        for n, c in enumerate(overlay.central_points)]  # fmt: skip
    _check_sites(overlay, template, problems)
    overlay.routes = _routes(template, problems)
    _check_overlaps(overlay, template, problems)
    if overlay.central_points or overlay.routes:
        template.overlay = overlay


def _subnet(value: object, position: Position | None, problems: Problems) -> str | None:
    try:
        network = ipaddress.IPv4Network(str(value), strict=True)
    except ValueError as exc:
        problems.add(position, f"overlay subnet '{value}': {exc}", "e.g. 192.168.255.0/24")
        return None
    if network.prefixlen > 28:
        problems.add(position, f"overlay subnet {network} is too small", "a /28 or larger")
        return None
    return str(network)


def _order_central_points(overlay: Overlay, named: list[tuple[str, Position | None]],
                          problems: Problems) -> None:  # fmt: skip
    """The primary is the central point the clients name; every client names the same one."""
    if not named:
        return
    primary = named[0][0]
    for target, position in named[1:]:
        if target != primary:
            problems.add(position, f"this names central point '{target}', another names "
                         f"'{primary}'", "every VRouter and Client names the primary; the "
                         "other central point is its backup")  # fmt: skip
    overlay.central_points.sort(key=lambda c: c.component != primary)


def _check_sites(overlay: Overlay, template: Template, problems: Problems) -> None:
    cps = overlay.central_points
    if len(cps) == 2 and cps[0].compute == cps[1].compute:
        problems.add(cps[1].position, "the backup central point is on the same node as the "
                     "primary", "put it on a public node of another site")  # fmt: skip
    elif len(cps) == 2 and cps[0].site and cps[0].site == cps[1].site:
        problems.add(cps[1].position, f"two central points on site '{cps[0].site}'",
                     "put the backup on a public node of another site")  # fmt: skip
    by_site: dict[str, Member] = {}
    for member in overlay.members:
        if not member.router:
            continue
        if overlay.central_point_of(member.compute) is None and not template.computes[
                member.compute].public:  # fmt: skip
            # IM deploys it; it reaches a central point of its own site only
            problems.warn(member.position, f"VRouter '{member.component}' is on a node without "
                          "a public address: it reaches a central point of its own site only "
                          "(give its Compute a public endpoint)")  # fmt: skip
        if member.site is None:
            continue
        other = by_site.setdefault(member.site, member)
        if other is not member:
            problems.add(member.position, f"two VRouters on site '{member.site}' ('"
                         f"{other.component}' and '{member.component}')",
                         "one router per site")  # fmt: skip


def _routes(template: Template, problems: Problems) -> list[StaticRoute]:
    routes = []
    for network in template.networks.values():
        if not network.router:
            continue
        cidr, _, system = network.router.partition(",")
        cidr, system = cidr.strip(), system.strip()
        try:
            ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as exc:
            problems.add(network.position, f"network '{network.name}': router "
                         f"'{network.router}': {exc}", "router = 'CIDR,system'")  # fmt: skip
            continue
        if system not in template.computes:  # IM translates it and never finds the system
            problems.warn(network.position, f"network '{network.name}': router names unknown "
                          f"system '{system}': no route is set (router = 'CIDR,system')")
            continue
        routes.append(StaticRoute(network.name, cidr, system, network.position))
    return routes


def _check_overlaps(overlay: Overlay, template: Template, problems: Problems) -> None:
    """Overlay subnets and the sites' written CIDRs must not overlap (a route could not tell
    them apart). Route targets (RADL `router`) cover site subnets on purpose: not checked."""
    spans: list[tuple[str, ipaddress.IPv4Network, Position | None]] = [
        (f"overlay subnet of '{c.component}'", c.network, c.position)
        for c in overlay.central_points
    ]
    for network in template.networks.values():
        if network.cidr:
            try:
                spans.append((f"network '{network.name}'",
                              ipaddress.IPv4Network(network.cidr, strict=False),
                              network.position))  # fmt: skip
            except ValueError:
                continue  # the loader reports a bad CIDR
    for (a, net_a, _), (b, net_b, pos_b) in itertools.combinations(spans, 2):
        if net_a.overlaps(net_b):
            problems.add(pos_b, f"{b} ({net_b}) overlaps {a} ({net_a})",
                         "give each site and the overlay subnets of their own")  # fmt: skip
