"""The core of the service layer: creating, deploying, reading and destroying infrastructures."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orbis.auth import Identity
from orbis.configure.ssh import generate_key_pair
from orbis.engine.attributes import attribute_resolver
from orbis.engine.deployer import Deployer
from orbis.lang import load_template
from orbis.lang.errors import TemplateError
from orbis.lang.functions import evaluate
from orbis.model.infrastructure import Template
from orbis.model.states import NodeState, aggregate_state
from orbis.providers.base import Provider
from orbis.service.errors import Forbidden, InvalidRequest, NotFoundError, ServiceError
from orbis.store.repository import Store
from orbis.store.schema import InfrastructureRow, NodeRow

log = logging.getLogger(__name__)

IN_PROGRESS = ("creating", "launching", "configuring")


@dataclass
class StateView:
    state: str
    vm_states: dict[str, str]


class ServiceBase:
    """State and the basic operations; the mixins in this package add the rest."""

    def __init__(self, store: Store, provider: Provider, work_dir: Path) -> None:
        self.store = store
        self.provider = provider
        self.work_dir = work_dir
        self.deployer = Deployer(store, provider, work_dir)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._templates: dict[str, Template] = {}

    # -- templates -------------------------------------------------------------------------
    def parse(self, text: str, file_name: str) -> Template:
        """Parse a template sent by a client (positions name the client's file)."""
        try:
            return load_template(Path(file_name).name, text=text)
        except TemplateError as exc:
            raise InvalidRequest(str(exc)) from exc

    def template(self, row: InfrastructureRow) -> Template:
        if row.id not in self._templates:
            self._templates[row.id] = self.parse(row.template, row.template_file)
        return self._templates[row.id]

    # -- lifecycle -------------------------------------------------------------------------
    async def create(
        self,
        who: Identity,
        text: str,
        file_name: str = "template.yaml",
        *,
        wait_launch: bool = False,
    ) -> str:
        infra_id = str(uuid.uuid1())
        template = self.parse(text, file_name)
        private, public = generate_key_pair()
        self.store.create_infrastructure(
            id=infra_id,
            owner_key=who.key,
            owner_name=who.name,
            name=template.name,
            template=text,
            template_format="tosca",
            template_file=Path(file_name).name,
            provider=self.provider.name,
            ssh_private_key=private,
            ssh_public_key=public,
        )
        self._templates[infra_id] = template
        for compute in template.computes.values():
            for _ in range(compute.count):
                self.store.add_node(infra_id, compute.name)
        self._start(infra_id, self.deployer.deploy(infra_id, template))
        if wait_launch:
            await self._wait_launched(infra_id)
            nodes = self.store.nodes(infra_id)
            if nodes and all(n.state == NodeState.FAILED for n in nodes):
                errors = "; ".join(f"{n.name} (VM {n.vm_id}): {n.error}" for n in nodes)
                await self.destroy(who, infra_id)
                raise InvalidRequest(f"Error launching the VMs: {errors}")
        return infra_id

    async def destroy(
        self, who: Identity, infra_id: str, *, wait: bool = True, force: bool = False
    ) -> None:
        row = self.infrastructure(who, infra_id)
        task = self._tasks.pop(row.id, None)
        if task is not None and not task.done():
            task.cancel()  # a deploy in progress stops here; the cleanup removes what it made
            await asyncio.gather(task, return_exceptions=True)
        job = self.deployer.destroy(row.id)
        if wait:
            try:
                await job
            except Exception as exc:
                if not force:
                    raise ServiceError(f"Error destroying the infrastructure: {exc}") from exc
                self.store.set_phase(row.id, "deleted", f"forced: {exc}")
        else:
            self._start(row.id, job)
        self._templates.pop(row.id, None)

    async def resume(self) -> None:
        """After a restart: finish destroys and deployments that were under way."""
        for row in self.store.list_rows():
            if row.phase == "deleting":
                self._start(row.id, self.deployer.destroy(row.id))
            elif row.phase in IN_PROGRESS:
                try:
                    template = self.template(row)
                except InvalidRequest:
                    continue
                log.info("resuming deployment of %s", row.id)
                self._start(row.id, self.deployer.deploy(row.id, template))

    async def shutdown(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _start(self, infra_id: str, job: Any) -> None:
        task = asyncio.create_task(self._guard(infra_id, job))
        self._tasks[infra_id] = task

    async def _guard(self, infra_id: str, job: Any) -> None:
        try:
            await job
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # recorded for the user rather than lost in a task
            log.exception("infrastructure %s", infra_id)
            self.store.append_log(infra_id, f"Internal error: {exc}\n")
            self.store.set_phase(infra_id, "done", f"internal error: {exc}")

    async def _wait_launched(self, infra_id: str, timeout: float = 600) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            row = self.store.get(infra_id)
            if row is None or row.phase not in ("creating", "launching"):
                return
            await asyncio.sleep(0.1)

    # -- reads -----------------------------------------------------------------------------
    def list_ids(self, who: Identity) -> list[str]:
        return self.store.list_ids(who.key)

    def infrastructure(self, who: Identity, infra_id: str) -> InfrastructureRow:
        row = self.store.get(infra_id)
        if row is None:
            raise NotFoundError("Invalid infrastructure ID or access not granted.")
        if row.deleted:
            raise NotFoundError("Deleted infrastructure.")
        if row.owner_key != who.key:
            raise Forbidden("Access to this infrastructure not granted.")
        return row

    def nodes(self, who: Identity, infra_id: str) -> list[NodeRow]:
        return self.store.nodes(self.infrastructure(who, infra_id).id)

    def node(self, who: Identity, infra_id: str, vm_id: str) -> NodeRow:
        self.infrastructure(who, infra_id)
        try:
            number = int(vm_id)
        except ValueError:
            raise NotFoundError("Invalid VM ID") from None
        row = self.store.node(infra_id, number)
        if row is None:
            raise NotFoundError("Invalid VM ID")
        if row.deleted:
            raise NotFoundError("Deleted VM.")
        return row

    def state(self, who: Identity, infra_id: str) -> StateView:
        row = self.infrastructure(who, infra_id)
        nodes = self.store.nodes(row.id)
        states = [NodeState(n.state) for n in nodes]
        agg = aggregate_state(
            states, deleting=row.phase == "deleting", configuring=row.phase in IN_PROGRESS
        )
        # Nodes are "running" until the whole configuration ends, so this only matters when
        # every node is already settled but the infrastructure is not finished yet.
        if row.phase in IN_PROGRESS and agg == NodeState.CONFIGURED:
            agg = NodeState.RUNNING
        return StateView(agg.value, {str(n.vm_id): n.state for n in nodes})

    def contmsg(self, who: Identity, infra_id: str, headeronly: bool = False) -> str:
        row = self.infrastructure(who, infra_id)
        text = row.log or ""
        if not headeronly:
            for n in self.store.nodes(row.id):
                text += f"VM {n.vm_id}:\n{n.log}{'*' * 50}\n"
        return text

    def outputs(self, who: Identity, infra_id: str) -> dict[str, Any]:
        row = self.infrastructure(who, infra_id)
        if row.template_format != "tosca":
            raise Forbidden("'outputs' infrastructure property is not valid in this infrastructure")
        template = self.template(row)
        resolve = attribute_resolver(template, self.store.nodes(row.id))
        return {name: evaluate(out.value, resolve) for name, out in template.outputs.items()}

    def detail(self, who: Identity, infra_id: str) -> dict[str, Any]:
        """Everything a client shows about one infrastructure (Orbis's own JSON view)."""
        row = self.infrastructure(who, infra_id)
        view = self.state(who, infra_id)
        steps = self.store.steps(row.id)
        nodes = []
        for n in self.store.nodes(row.id):
            mine = [s for s in steps if s.vm_id == n.vm_id]
            current = next((s.name for s in mine if s.status == "running"), None)
            nodes.append(
                {
                    "vm_id": n.vm_id,
                    "name": n.name,
                    "state": n.state,
                    "private_ip": n.private_ip,
                    "public_ip": n.public_ip,
                    "error": n.error,
                    "current_step": current,
                    "steps": [{"name": s.name, "level": s.level, "status": s.status} for s in mine],
                }
            )
        return {
            "id": row.id,
            "name": row.name,
            "phase": row.phase,
            "state": view.state,
            "owner": row.owner_name,
            "created_at": row.created_at.isoformat(),
            "nodes": nodes,
        }
