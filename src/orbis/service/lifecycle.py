"""Operations on a running infrastructure: add and remove nodes, stop/start/reboot,
reconfigure, retry, alter, disk snapshots.

Each one only changes the desired state in the store (one transaction) and asks the scheduler
to reconcile; the engine does the work. Two modifications at once therefore never lose each
other: both are recorded, and the reconciler brings about their sum.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from orbis.auth import Identity
from orbis.configure import storage
from orbis.lang.merge import count_patch
from orbis.model.infrastructure import Template
from orbis.model.states import NodeState
from orbis.providers.base import ProviderError
from orbis.service.core import ServiceBase
from orbis.service.errors import (
    Conflict,
    InvalidRequest,
    NotFoundError,
    NotSupported,
    ServiceError,
)
from orbis.store.schema import InfrastructureRow, NodeRow

log = logging.getLogger(__name__)

POWER = {"stop": "stopped", "start": "running"}
UPDATE_ATTEMPTS = 8  # merges of one update onto templates other updates replaced meanwhile


class LifecycleMixin(ServiceBase):
    async def add_resources(
        self, who: Identity, infra_id: str, text: str, *, context: bool = True
    ) -> list[int]:
        """Apply a template update (TOSCA merged into the stored one, IM's way, or RADL deploy
        lines for existing systems); return the new VM ids."""
        for _ in range(UPDATE_ATTEMPTS):
            row = self.infrastructure(who, infra_id)
            stored = row.template if row.template_format == "tosca" else None
            language, merged, parsed = await self.parse_update_async(
                text, row.template_file, stored, "resources.radl"
            )
            # the nodes counted, the quota checked, the rows added and the merged template
            # stored under the owner's lock: concurrent updates never together pass the quota,
            # and one merged onto a template another update replaced meanwhile is merged again
            with self.quota_lock(row.owner_key):
                if merged is not None and self._template_now(row.id) != stored:
                    continue  # another update landed since we read it: merge onto that one
                live = [n for n in self.store.nodes(row.id) if n.desired != "absent"]
                wanted, removal = self._wanted(row, language, parsed, live)
                total = sum({**_counts(live), **wanted}.values())
                if total > len(live):  # removing is never refused, even past a lowered quota
                    self.check_quota(row.owner_key, total, row.id)
                added, removed = self._apply_counts(row, live, wanted, removal)
                if merged is not None:
                    self._store_template(row.id, merged)
                break
        else:
            raise Conflict(f"the infrastructure changed {UPDATE_ATTEMPTS} times while this "
                           "update was merged: send it again")  # fmt: skip
        if context:
            self.store.update_nodes(row.id, None, needs_config=True)
        self.store.request(row.id)
        self.scheduler.kick(row.id)
        for vm_id in removed:
            self.store.append_log(row.id, f"VM {vm_id} to be removed\n")
        return added

    async def scale(self, who: Identity, infra_id: str, node: str, count: int) -> list[int]:
        """Set how many instances of a node there are (orbis scale)."""
        row = self.infrastructure(who, infra_id)
        if node not in self.template(row).computes:
            raise NotFoundError(f"No compute node '{node}' in this infrastructure")
        if count < 0:
            raise InvalidRequest("The number of instances cannot be negative")
        return await self.add_resources(who, infra_id, count_patch(node, count))

    async def remove_nodes(
        self, who: Identity, infra_id: str, vm_ids: list[int], *, context: bool = True
    ) -> None:
        row = self.infrastructure(who, infra_id)
        nodes = {n.vm_id: n for n in self.store.nodes(row.id)}
        missing = [v for v in vm_ids if v not in nodes]
        if missing:
            raise NotFoundError(f"Invalid VM ID: {', '.join(map(str, missing))}")
        self.refuse_detached(row, vm_ids, "removing VMs")
        self.store.update_nodes(row.id, vm_ids, desired="absent")
        if context:
            others = [v for v in nodes if v not in vm_ids]
            self.store.update_nodes(row.id, others, needs_config=True)
        self.store.request(row.id)
        self.scheduler.kick(row.id)
        await self.wait_reconciled(row.id)

    async def power(
        self, who: Identity, infra_id: str, action: str, vm_id: int | None = None
    ) -> None:
        """`action` is stop, start or reboot; of one node, or of all when vm_id is None."""
        row = self.infrastructure(who, infra_id)
        targets = None if vm_id is None else [self._node(row, vm_id).vm_id]
        self.refuse_detached(row, targets, action)
        if action == "reboot":
            self.store.update_nodes(row.id, targets, reboot_pending=True)
        elif action in POWER:
            self.store.update_nodes(row.id, targets, desired=POWER[action])
        else:
            raise InvalidRequest(f"Unknown operation: {action}")
        self.store.request(row.id)
        self.scheduler.kick(row.id)
        if not await self.wait_reconciled(row.id, timeout=300):
            raise ServiceError(f"Error in {action}: not finished after 300 s; see contmsg")

    async def reconfigure(
        self, who: Identity, infra_id: str, text: str | None = None,
        vm_ids: list[int] | None = None,
    ) -> None:  # fmt: skip
        """Run the configuration again (on some nodes), after an optional template update."""
        row = self.infrastructure(who, infra_id)
        for vm_id in vm_ids or []:
            self._node(row, vm_id)
        self.refuse_detached(row, vm_ids, "reconfiguring")
        if text and text.strip():
            stored = row.template if row.template_format == "tosca" else None
            # parsed (off the loop) to refuse a broken update before storing it
            _, merged, _ = await self.parse_update_async(text, row.template_file, stored)
            if merged is None:
                raise NotSupported("Error reconfiguring: only TOSCA updates are supported yet")
            self._store_template(row.id, merged)
        self.store.update_nodes(row.id, vm_ids, needs_config=True)
        self.store.request(row.id)
        self.scheduler.kick(row.id)

    async def retry(self, who: Identity, infra_id: str) -> list[int]:
        """Launch failed nodes again and reconfigure unconfigured ones; returns their VM ids."""
        row = self.infrastructure(who, infra_id)
        nodes = self.store.nodes(row.id)
        nodes = [n for n in nodes if n.adoption != "detached"]  # never relaunched or configured
        failed = [n.vm_id for n in nodes if n.state == NodeState.FAILED]
        unconfigured = [n.vm_id for n in nodes if n.state == NodeState.UNCONFIGURED]
        self.store.update_nodes(row.id, failed, state=NodeState.PENDING, provider_id=None,
                                error="")  # fmt: skip
        # IM configures the whole infrastructure again when nodes change
        self.store.update_nodes(row.id, None if failed else unconfigured, needs_config=True)
        self.store.request(row.id)
        self.scheduler.kick(row.id)
        return failed + unconfigured

    async def alter(self, who: Identity, infra_id: str, vm_id: int, text: str) -> NodeRow:
        """Change a running node with the system (or Compute) in `text`: resize it in place
        to its cpu/memory, and attach the disks it has that the node has not (IM's alter);
        new disks with a mount path are formatted and mounted."""
        row = self.infrastructure(who, infra_id)
        node = self._node(row, vm_id)
        self.refuse_detached(row, [vm_id], "altering the VM")
        template, _ = await self.parse_async(text, "alter")
        if len(template.computes) != 1:
            raise InvalidRequest("Error altering the VM: give exactly one system")
        new = next(iter(template.computes.values()))
        current = self.template(row).computes.get(node.name)
        spec = dict(node.spec or {})
        known = {v.index for v in (current.volumes if current else [])}
        known |= {int(d["index"]) for d in spec.get("disks") or []}
        added = [v for v in sorted(new.volumes, key=lambda v: v.index) if v.index not in known]
        if new.num_cpus is None and new.mem_size is None and not added:
            raise InvalidRequest("Error altering the VM: nothing to change (cpu, memory, a new "
                                 "disk)")  # fmt: skip
        if not node.provider_id or node.provider_id.startswith("app:"):
            raise InvalidRequest("Error altering the VM: it is not running")
        provider = self.deployer.provider_of(node)
        async with self._provider_action(row.id, vm_id, "alter", "Error altering the VM"):
            if new.num_cpus is not None or new.mem_size is not None:
                await asyncio.to_thread(provider.alter, node.provider_id, new.num_cpus,
                                        new.mem_size)  # fmt: skip
                spec |= {k: v for k, v in (("num_cpus", new.num_cpus),
                                           ("mem_size", new.mem_size)) if v}  # fmt: skip
                self.store.update_node(row.id, vm_id, spec=spec)
            for volume in added:
                device = await asyncio.to_thread(provider.add_disk, node.provider_id, volume)
                spec["disks"] = [*(spec.get("disks") or []), {
                    "index": volume.index, "size": volume.size, "mount_path": volume.mount_path,
                    "fstype": volume.fs_type, "device": device or volume.device}]  # fmt: skip
                self.store.update_node(row.id, vm_id, spec=spec)  # attached: recorded at once
                self.deployer.log(row.id, f"Disk {volume.index} attached to VM {vm_id}"
                                          + (f" as {device}" if device else ""))  # fmt: skip
            disks = storage.mountable(added)
            if disks and not provider.simulated:
                done = await self.deployer.prepare_disks(row, self._node(row, vm_id), disks)
                self.deployer.log(row.id, f"VM {vm_id}: {done}")
        return self._node(row, vm_id)

    async def snapshot(self, who: Identity, infra_id: str, vm_id: int, disk: int, name: str,
                       *, auto_delete: bool = False) -> str:  # fmt: skip
        """Save disk `disk` of a node as an image at the node's site; return the image URL
        (one a template can name). `auto_delete` images are deleted with the infrastructure."""
        row = self.infrastructure(who, infra_id)
        node = self._node(row, vm_id)
        self.refuse_detached(row, [vm_id], "creating snapshot")
        if not name.strip():
            raise InvalidRequest("Incorrect value in image_name parameter")
        if disk < 0:
            raise InvalidRequest("Incorrect value in diskNum parameter")
        if not node.provider_id:
            raise InvalidRequest("Error creating snapshot: the VM has not been launched")
        if node.provider_id.startswith("app:"):
            raise NotSupported("Error creating snapshot: a container application has no disk")
        async with self._provider_action(row.id, vm_id, "snapshot",
                                         "Error creating snapshot") as outcome:  # fmt: skip
            url = await asyncio.to_thread(
                self.deployer.provider_of(node).snapshot, node.provider_id, disk, name
            )
            outcome.append(url)
        self.store.add_snapshot(row.id, vm_id, disk, name, node.site, url, auto_delete)
        self.deployer.log(row.id, f"Disk {disk} of VM {vm_id} saved as image {url}"
                                  + (" (deleted with the infrastructure)" if auto_delete else ""))
        return url

    # -- helpers ---------------------------------------------------------------------------
    @asynccontextmanager
    async def _provider_action(self, infra_id: str, vm_id: int, kind: str, error: str
                               ) -> AsyncIterator[list[str]]:  # fmt: skip
        """Record a provider action around the block (what it appends is the success note);
        a provider's error becomes `error: <its words>`, an SDK's own exception only its type
        (its text may hold request data: the server log has it)."""
        record = self.actions.begin(infra_id, vm_id, kind)
        outcome: list[str] = []
        try:
            yield outcome
        except ProviderError as exc:
            self.actions.end(record, False, str(exc))
            raise ServiceError(f"{error}: {exc}") from exc
        except Exception as exc:
            log.exception("%s of VM %s of %s failed", kind, vm_id, infra_id)
            self.actions.end(record, False, f"unexpected {type(exc).__name__}")
            raise ServiceError(f"{error}: unexpected {type(exc).__name__} "
                               f"(see the server log)") from exc  # fmt: skip
        self.actions.end(record, True, " ".join(outcome))

    def _node(self, row: InfrastructureRow, vm_id: int) -> NodeRow:
        node = self.store.node(row.id, vm_id)
        if node is None:
            raise NotFoundError("Invalid VM ID")
        if node.deleted:
            raise NotFoundError("Deleted VM.")
        return node

    def _wanted(self, row: InfrastructureRow, language: str, parsed: Template | None,
                live: list[NodeRow]) -> tuple[dict[str, int], dict[str, list[int]]]:  # fmt: skip
        """(instances wanted per node, VM ids named for removal) of an update."""
        if language == "tosca":
            if parsed is None:
                raise InvalidRequest("Error Adding resources: this infrastructure was not "
                                     "created from TOSCA")  # fmt: skip
            removal = {c.name: [int(v) for v in c.removal_list if str(v).isdigit()]
                       for c in parsed.computes.values()}  # fmt: skip
            return parsed.counts(), removal
        assert parsed is not None
        existing = self.template(row).computes
        unknown = [name for name in parsed.computes if name not in existing]
        if unknown:
            raise NotSupported("Error Adding resources: new systems "
                               f"({', '.join(unknown)}) cannot be added yet")  # fmt: skip
        current = _counts(live)
        return {c.name: current.get(c.name, 0) + c.count for c in parsed.computes.values()}, {}

    def _apply_counts(
        self, row: InfrastructureRow, live: list[NodeRow], wanted: dict[str, int],
        removal: dict[str, list[int]],
    ) -> tuple[list[int], list[int]]:  # fmt: skip
        added: list[int] = []
        removed: list[int] = []
        current = _counts(live)
        for name, count in wanted.items():
            delta = count - current.get(name, 0)
            if delta > 0:
                added += self.store.add_nodes(row.id, [name] * delta)
            elif delta < 0:
                # never a detached node: it cannot be removed (service/adoption.py)
                mine = sorted(n.vm_id for n in live if n.name == name
                              and n.adoption != "detached")  # fmt: skip
                chosen = [v for v in removal.get(name, []) if v in mine][:-delta]
                chosen += [v for v in mine if v not in chosen][: -delta - len(chosen)]
                self.store.update_nodes(row.id, chosen, desired="absent")
                removed += chosen
        return added, removed

    def _template_now(self, infra_id: str) -> str | None:
        """The stored template as it is now (not the cached row the request began with)."""
        with self.store.session() as s:
            found = s.get(InfrastructureRow, infra_id)
            return found.template if found is not None else None

    def _store_template(self, infra_id: str, text: str) -> None:
        with self.store.session() as s:
            target = s.get(InfrastructureRow, infra_id)
            if target is not None:
                target.template = text


def _counts(nodes: list[NodeRow]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n.name] = counts.get(n.name, 0) + 1
    return counts
