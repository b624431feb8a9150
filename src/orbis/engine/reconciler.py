"""Bringing an infrastructure to its desired state, from whatever state it is in.

Level-triggered and crash-only: each pass re-reads the store, computes the node actions
(engine/diff.py), runs them concurrently, then configures the nodes that need it. Changes that
arrive meanwhile bump the infrastructure's generation, and the loop goes round again. Nothing is
remembered in memory between passes, so a restarted service simply runs the loop again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from orbis.engine.deployer import Deployer
from orbis.engine.diff import NodeAction, needs_configuration, node_actions
from orbis.engine.functions import FunctionEngine
from orbis.model.infrastructure import Template
from orbis.store.coordination import ActionLog
from orbis.store.repository import Store
from orbis.store.schema import InfrastructureRow, NodeRow

log = logging.getLogger(__name__)

TemplateOf = Callable[[InfrastructureRow], Template]


class Reconciler:
    def __init__(self, store: Store, deployer: Deployer, actions: ActionLog,
                 template_of: TemplateOf, parallel: int = 16,
                 functions: FunctionEngine | None = None) -> None:  # fmt: skip
        self.store = store
        self.functions = functions
        self.deployer = deployer
        self.actions = actions
        self.template_of = template_of
        self.parallel = parallel
        self.slots = asyncio.Semaphore(parallel)

    async def converge(self, infra_id: str) -> None:
        """Act until what is observed matches what is wanted (for the generation seen)."""
        while True:
            infra = self.store.get(infra_id)
            if infra is None or (infra.deleted and infra.phase == "deleted"):
                return
            generation = infra.generation
            if infra.desired == "absent":
                await self._destroy(infra)
            else:
                await self._pass(infra)
            latest = self.store.get(infra_id)
            if latest is None or latest.generation == generation:
                self.store.mark_reconciled(infra_id, generation)
                return

    async def _pass(self, infra: InfrastructureRow) -> None:
        template = self.template_of(infra)
        nodes = _attached(self.store.nodes(infra.id))  # a detached node is never acted on
        todo = node_actions(nodes)
        if infra.phase == "creating":
            sites = self.deployer.sites_of(infra.id)
            where = (f"the {self.deployer.provider.name} back-end" if len(sites) == 1
                     and sites[0].local else "sites " + ", ".join(s.id for s in sites))
            self.deployer.log(infra.id, f"Deploying infrastructure {infra.id} on {where}")
            for warning in template.warnings:
                self.deployer.log(infra.id, f"Warning: {warning}")
        if todo:
            if any(a.kind == "launch" for a in todo):
                self.store.set_phase(infra.id, "launching")
                failure = await self.deployer.prepare(infra.id)
                if failure:
                    for row in nodes:
                        if row.state == "pending":
                            self.deployer.fail(row, f"could not prepare the infrastructure: "
                                                    f"{failure}")  # fmt: skip
                    todo = [a for a in todo if a.kind != "launch"]
            by_id = {n.vm_id: n for n in nodes}
            acts = [asyncio.create_task(self._act(infra, template, a, by_id[a.vm_id]))
                    for a in todo]  # fmt: skip
            if any(a.kind == "launch" for a in todo):  # Ansible's start, while nodes launch
                acts.append(asyncio.create_task(self.deployer.warm_ahead(infra.id, template)))
            try:
                await asyncio.gather(*acts)
            except BaseException:
                # one failed (e.g. the database went away): stop the others too, so that no
                # action goes on after this server lets go of the infrastructure's lease
                for act in acts:
                    act.cancel()
                await asyncio.gather(*acts, return_exceptions=True)
                raise
        if todo and template.overlay is not None:  # a central point may have moved
            await self.deployer.overlay.follow(infra, template, _attached(
                self.store.nodes(infra.id)))  # fmt: skip
        targets = needs_configuration(_attached(self.store.nodes(infra.id)))
        if targets:
            self.store.set_phase(infra.id, "configuring")
            rows = [n for n in self.store.nodes(infra.id) if n.vm_id in set(targets)]
            action = self.actions.begin(infra.id, None, "configure")
            try:
                await self.deployer.configure(infra, template, rows)
            finally:
                self.actions.end(action, True, f"VMs {','.join(map(str, targets))}")
        await self.deployer.runners.release(infra.id)  # one warmed for launches that all failed
        if self.functions is not None:  # after configuration: hosted ones need their OSCAR
            record = self.actions.begin(infra.id, None, "functions")
            try:
                await self.functions.converge(infra, template)
            finally:
                self.actions.end(record, True)
        if self.store.get(infra.id) is not None:
            self.store.set_phase(infra.id, "done")

    async def _act(self, infra: InfrastructureRow, template: Template, action: NodeAction,
                   row: NodeRow) -> None:  # fmt: skip
        held = False

        def free() -> None:
            """The action's provider calls are over: its wait for SSH (minutes on a cloud)
            must not keep another node from being launched meanwhile."""
            nonlocal held
            if held:
                held = False
                self.slots.release()

        handlers: dict[str, Callable[[], Awaitable[bool]]] = {
            "launch": lambda: self.deployer.launch_node(infra, template, row, free),
            "start": lambda: self.deployer.start_node(infra, row, free),
            "stop": lambda: self.deployer.stop_node(infra, row),
            "reboot": lambda: self.deployer.reboot_node(infra, row, free),
            "destroy": lambda: self.deployer.destroy_node(infra, row),
        }
        await self.slots.acquire()
        held = True
        try:
            record = self.actions.begin(infra.id, row.vm_id, action.kind)
            ok = False
            try:
                ok = await handlers[action.kind]()
            finally:
                self.actions.end(record, ok)
        finally:
            free()

    async def _destroy(self, infra: InfrastructureRow) -> None:
        record = self.actions.begin(infra.id, None, "destroy")
        ok = False
        try:
            if self.functions is not None:  # before the machines an OSCAR may run on
                try:
                    template: Template | None = self.template_of(infra)
                except Exception:  # noqa: BLE001 - a template that no longer parses
                    template = None
                await self.functions.destroy(infra.id, template)
            await self.deployer.destroy(infra.id)
            ok = True
        finally:
            self.actions.end(record, ok)


def _attached(nodes: list[NodeRow]) -> list[NodeRow]:
    """The nodes the engine may act on: all but imported ones left detached (another owner's
    resource: service/adoption.py)."""
    return [n for n in nodes if n.adoption != "detached"]
