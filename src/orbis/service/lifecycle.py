"""Operations on a running infrastructure: add and remove nodes, stop/start/reboot,
reconfigure, alter. (Issue 5 fills these in; until then they answer NotSupported.)"""

from __future__ import annotations

from orbis.auth import Identity
from orbis.service.core import ServiceBase
from orbis.service.errors import NotSupported


class LifecycleMixin(ServiceBase):
    async def add_resources(
        self, who: Identity, infra_id: str, text: str, *, context: bool = True
    ) -> list[int]:
        """Add what the template (TOSCA update or RADL) asks for; return the new VM ids."""
        self.infrastructure(who, infra_id)
        raise NotSupported("Error Adding resources: not supported by this server yet")

    async def remove_nodes(
        self, who: Identity, infra_id: str, vm_ids: list[int], *, context: bool = True
    ) -> None:
        self.infrastructure(who, infra_id)
        raise NotSupported("Error Removing resources: not supported by this server yet")

    async def power(
        self, who: Identity, infra_id: str, action: str, vm_id: int | None = None
    ) -> None:
        """`action` is stop, start or reboot; of one node, or of all when vm_id is None."""
        self.infrastructure(who, infra_id)
        raise NotSupported(f"Error in {action}: not supported by this server yet")

    async def reconfigure(
        self, who: Identity, infra_id: str, text: str | None = None,
        vm_ids: list[int] | None = None,
    ) -> None:  # fmt: skip
        self.infrastructure(who, infra_id)
        raise NotSupported("Error reconfiguring: not supported by this server yet")

    async def alter(self, who: Identity, infra_id: str, vm_id: int, text: str) -> None:
        self.infrastructure(who, infra_id)
        raise NotSupported("Error altering the VM: not supported by this server yet")
