"""What an import may take over: a node's provider resource is adopted only if it carries the
importer's owner mark, or (on a cloud) the importer's own credentials can see it. Anything else
is imported "detached": shown, never acted on (IM imports blindly; we don't —
docs/compatibility.md).

Exported data is the client's text: its provider ids may name anyone's containers or VMs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from orbis.auth import Identity
from orbis.model.states import NodeState
from orbis.providers.base import Provider, ProviderError
from orbis.service.core import ServiceBase
from orbis.service.errors import Conflict
from orbis.store.schema import InfrastructureRow, NodeRow

log = logging.getLogger(__name__)

ADOPTED = "adopted"
DETACHED = "detached"
APP_PREFIX = "app:"  # a container app's row (engine/deployer_base.py): no machine to check


class Detached(Conflict):
    """An action on a node imported detached (answered 409, naming the node and why)."""


def detached_reason(vm_id: int) -> str:
    return (f"VM {vm_id} is detached: it was imported from data whose provider resource "
            "carries no owner mark of yours and is not visible with your own cloud "
            "credentials, so Orbis never acts on it (destroying the infrastructure only "
            "forgets it)")  # fmt: skip


class AdoptionMixin(ServiceBase):
    async def adoption(self, who: Identity, node: dict[str, Any]) -> str:
        """"" for a node with nothing launched, else ADOPTED or DETACHED (see module doc)."""
        provider_id = node.get("provider_id")
        if not provider_id:
            return ""
        if not isinstance(provider_id, str) or provider_id.startswith(APP_PREFIX):
            return DETACHED
        site = node.get("site") if isinstance(node.get("site"), str) else None
        try:
            if await self._carries_mark(who, site, provider_id):
                return ADOPTED
            if site and await self._visible_with_own_credentials(who, site, provider_id):
                return ADOPTED
        except ProviderError as exc:  # cannot tell: never adopt on doubt
            log.info("import: cannot check %s at %s: %s", provider_id, site or "local", exc)
        except Exception:  # an SDK's own error: the same, with the details in the server log
            log.exception("import: cannot check %s at %s", provider_id, site or "local")
        return DETACHED

    async def _carries_mark(self, who: Identity, site: str | None, provider_id: str) -> bool:
        provider = self._checking_provider(who, site)
        if provider is None:
            return False
        found = await asyncio.to_thread(provider.owner_mark_of, provider_id)
        return self.deployer.marks.matches(found, who.keys or (who.key,))

    def _checking_provider(self, who: Identity, site: str | None) -> Provider | None:
        """The server's back-end for a local node; for a cloud node, the site as reached with
        the importer's own lines (an operator's shared site reads labels only)."""
        if not site or site == "local":
            return self.provider
        for found in self.sites.sites_for(who.clouds):
            if found.id == site:
                return self.sites.provider(found)
        return None

    async def _visible_with_own_credentials(self, who: Identity, site: str,
                                            provider_id: str) -> bool:  # fmt: skip
        own = [s for s in self.sites.sites_for(who.clouds)
               if s.id == site and not s.shared and not s.local]  # fmt: skip
        if not own:
            return False
        machine = await asyncio.to_thread(self.sites.provider(own[0]).inspect, provider_id)
        return machine.state != NodeState.OFF

    # -- refusals --------------------------------------------------------------------------
    def refuse_detached(self, row: InfrastructureRow, vm_ids: Iterable[int] | None,
                        action: str) -> None:  # fmt: skip
        """Raise Detached if `action` would touch a detached node (`vm_ids` None: all)."""
        nodes: list[NodeRow] = self.store.nodes(row.id)
        wanted = None if vm_ids is None else set(vm_ids)
        for node in nodes:
            if node.adoption == DETACHED and (wanted is None or node.vm_id in wanted):
                raise Detached(f"Error in {action}: {detached_reason(node.vm_id)}")
