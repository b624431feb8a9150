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


def host_name(compute: Compute | None, name: str, vm_id: int,
              given: str | None = None) -> tuple[str, str]:  # fmt: skip
    """(host name, domain) of a node; `given`: the name an elastic monitor gave it from an
    EC3 `ec3_node_pattern` (the node's `spec["host_name"]`), the domain still the dns_name's."""
    interfaces = sorted(compute.interfaces, key=lambda i: i.order) if compute else []
    wanted = next((i.dns_name for i in interfaces if i.dns_name), None)
    if wanted:
        host, _, domain = wanted.replace("#N#", str(vm_id)).strip().rstrip(".").partition(".")
        return _label(given or host), domain.lower() or DEFAULT_DOMAIN
    return _label(given or f"{name}-{vm_id}"), DEFAULT_DOMAIN


def given_name(node: object) -> str | None:
    """The host name a node was given (an elastic pool's ec3_node_pattern), if any."""
    spec = getattr(node, "spec", None)
    found = spec.get("host_name") if isinstance(spec, dict) else None
    return found if isinstance(found, str) and found else None
