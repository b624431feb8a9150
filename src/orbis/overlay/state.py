"""What the service keeps of an infrastructure's overlay between runs, in the store's `meta`
table under `overlay:<infrastructure id>` (JSON), so a restarted or another server goes on.

The CA key is kept sealed with the service's key, as cloud credentials and SSH keys are
(docs/overlay.md: why in the store rather than on the central points). Node keys are never
here: only the certificates issued and the serials revoked."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from orbis.store.repository import Store

PREFIX = "overlay:"


@dataclass
class OverlayState:
    ca_cert: str = ""
    ca_key_sealed: str = ""
    next_serial: int = 2  # 1 is nobody's: a serial is never reused
    # vm id (as text) → {"serial", "cn", "provider_id"}: the certificate a node holds now
    issued: dict[str, dict[str, Any]] = field(default_factory=dict)
    revoked: list[int] = field(default_factory=list)
    site_subnets: dict[str, str] = field(default_factory=dict)  # site → CIDR, as measured
    site_mtus: dict[str, int] = field(default_factory=dict)  # site → its links' MTU, as measured
    tuned_for: int = 0  # the smallest site MTU the tunnels' configurations were written for
    servers: list[int] = field(default_factory=list)  # vm ids of the central points
    remotes: list[str] = field(default_factory=list)  # their addresses, as members were told
    routers: dict[str, str] = field(default_factory=dict)  # site → router address, as routed
    # router's provider id → the CIDRs its cloud routes through it (engine/overlay_routes.py)
    cloud_routes: dict[str, list[str]] = field(default_factory=dict)

    def revoke(self, vm_id: int) -> bool:
        """Revoke what `vm_id` holds; False if it holds nothing."""
        held = self.issued.pop(str(vm_id), None)
        if held is None:
            return False
        self.revoked.append(int(held["serial"]))
        return True

    def keep_sites(self, sites: set[str] | dict[str, Any]) -> list[str]:
        """Forget the subnets of sites that no longer have a router (all their routing nodes
        removed): nobody routes to them any more. The sites forgotten."""
        gone = sorted(s for s in {*self.site_subnets, *self.site_mtus} if s not in sites)
        for site in gone:
            self.site_subnets.pop(site, None)
            self.site_mtus.pop(site, None)
        return gone


def key(infra_id: str) -> str:
    return PREFIX + infra_id


def load(store: Store, infra_id: str) -> OverlayState | None:
    text = store.meta(key(infra_id))
    if not text:
        return None
    data = json.loads(text)
    known = OverlayState.__dataclass_fields__
    return OverlayState(**{k: v for k, v in data.items() if k in known})


def save(store: Store, infra_id: str, state: OverlayState) -> None:
    store.put_meta(key(infra_id), json.dumps(asdict(state)))


def forget(store: Store, infra_id: str) -> None:
    store.drop_meta(key(infra_id))


Sealing = tuple[Callable[[str], str], Callable[[str], str]]  # (seal, open)
