"""Which kernel rights a node of an overlay infrastructure gets when it is created.

Containers cannot take these later: the tun device, CAP_NET_ADMIN and IP forwarding (podman's
`--sysctl`, since writing /proc/sys inside fails) are creation options. Only infrastructures
with an overlay get any; the rest keep the default, unprivileged nodes.
"""

from __future__ import annotations

from orbis.model.infrastructure import Template

NONE = ""
ROUTES = "routes"  # sets routes through its site's router: CAP_NET_ADMIN
TUNNEL = "tunnel"  # runs OpenVPN and forwards: + /dev/net/tun and net.ipv4.ip_forward=1


def node_rights(template: Template | None, compute: str) -> str:
    """NONE, ROUTES or TUNNEL for one Compute of `template`."""
    overlay = template.overlay if template is not None else None
    if overlay is None:
        return NONE
    if compute in overlay.vpn_computes() or compute in overlay.router_computes():
        return TUNNEL
    return ROUTES
