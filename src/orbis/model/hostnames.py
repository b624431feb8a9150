"""A node's host name and domain, from its first interface's `dns_name` (IM's rule).

Pure, and below both the engine (engine/naming.py, which builds IM's `IM_*` facts on it) and
the providers (EC2's DNS records name a node as it names itself), so neither imports the other.
"""

from __future__ import annotations

import re

from orbis.model.infrastructure import Compute

DEFAULT_DOMAIN = "localdomain"


def _label(text: str) -> str:
    """A valid host name label (RFC 1123: letters, digits, hyphens; at most 63)."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63] or "node"


def host_name(compute: Compute | None, name: str, vm_id: int) -> tuple[str, str]:
    """(host name, domain) of a node."""
    interfaces = sorted(compute.interfaces, key=lambda i: i.order) if compute else []
    wanted = next((i.dns_name for i in interfaces if i.dns_name), None)
    if wanted:
        host, _, domain = wanted.replace("#N#", str(vm_id)).strip().rstrip(".").partition(".")
        return _label(host), domain.lower() or DEFAULT_DOMAIN
    return _label(f"{name}-{vm_id}"), DEFAULT_DOMAIN
