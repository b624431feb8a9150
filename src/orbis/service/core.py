"""The core of the service layer: creating, deploying, reading and destroying infrastructures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orbis.auth import Identity
from orbis.configure.ssh import generate_key_pair
from orbis.elastic.monitor import Monitors
from orbis.engine.attributes import attribute_resolver
from orbis.engine.deployer import Deployer
from orbis.engine.functions import FunctionEngine
from orbis.engine.reconciler import Reconciler
from orbis.engine.scheduler import Scheduler
from orbis.lang import language_of, load_template
from orbis.lang.errors import TemplateError
from orbis.lang.functions import evaluate
from orbis.model.infrastructure import Template
from orbis.model.states import NodeState, aggregate_state
from orbis.paths import new_id
from orbis.placement.sites import SiteRegistry, configured_sites
from orbis.providers.base import Provider
from orbis.service import parse_jobs
from orbis.service.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFoundError,
    ServiceError,
)
from orbis.service.parse_pool import ParsePool
from orbis.store.coordination import ActionLog, Leases
from orbis.store.owner_lock import OwnerBusy, owner_lock
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

    def __init__(
        self, store: Store, provider: Provider, work_dir: Path, parallel: int = 32,
        holder: str | None = None,
    ) -> None:  # fmt: skip
        self.store = store
        self.provider = provider
        self.work_dir = work_dir
        provider.installation = store.installation_id()  # it labels what it creates
        self.sites = SiteRegistry(provider, operator_lines=configured_sites())
        # the deployer asks for an infrastructure's cloud lines only when it needs them
        self.deployer = Deployer(store, provider, work_dir, self.sites,
                                 lambda infra_id: self.cloud_credentials(infra_id),
                                 lambda row: self.private_key(row))  # fmt: skip
        self.leases = Leases(store, holder)  # holder: tests run two "processes" in one
        self.actions = ActionLog(store, self.leases.holder)
        self.functions = FunctionEngine(store, lambda infra_id: self.cloud_credentials(infra_id),
                                        self.deployer.log)  # fmt: skip
        self.reconciler = Reconciler(
            store, self.deployer, self.actions, self.template, parallel=parallel,
            functions=self.functions,
        )
        self.scheduler = Scheduler(store, self.reconciler, provider, self.leases,
                                   sites=self.sites)  # fmt: skip
        self.monitors = Monitors(self)  # elastic clusters (orbis.elastic)
        # parsed templates by (id, text): an update elsewhere changes the text, so no stale hit
        self._templates: dict[tuple[str, int], Template] = {}
        self.parse_pool: ParsePool | None = None  # set by the API: parse off the event loop

    def cloud_credentials(self, infra_id: str) -> list[dict[str, str]]:
        """The cloud lines an infrastructure was created with (AccessMixin opens them)."""
        return []

    def seal_private_key(self, text: str) -> str:
        """An SSH private key as stored (AccessMixin seals it)."""
        return text

    def private_key(self, row: InfrastructureRow) -> str:
        """An infrastructure's SSH private key as usable (AccessMixin unseals it)."""
        return row.ssh_private_key

    # -- templates -------------------------------------------------------------------------
    def parse(self, text: str, file_name: str) -> Template:
        """Parse a template sent by a client (positions name the client's file)."""
        try:
            return load_template(Path(file_name).name, text=text)
        except TemplateError as exc:
            raise InvalidRequest(str(exc)) from exc

    async def parse_async(self, text: str, file_name: str) -> tuple[Template, str]:
        """(template, language) of a client's template, parsed in a worker process under the
        CPU cap (parse_pool.py); inline when the service has no pool (tests, scripts)."""
        if self.parse_pool is None:
            return self.parse(text, file_name), language_of(text)
        found: tuple[Template, str] = await self.parse_pool.run(parse_jobs.parse, text, file_name)
        return found

    async def parse_update_async(self, text: str, file_name: str, stored_tosca: str | None,
                                 radl_name: str = ""
                                 ) -> tuple[str, str | None, Template | None]:  # fmt: skip
        """An update's (language, stored TOSCA merged with it, template): parse_jobs.py."""
        if self.parse_pool is None:
            return parse_jobs.parse_update(text, file_name, stored_tosca, radl_name)
        found: tuple[str, str | None, Template | None] = await self.parse_pool.run(
            parse_jobs.parse_update, text, file_name, stored_tosca, radl_name
        )
        return found

    def template(self, row: InfrastructureRow) -> Template:
        key = (row.id, hash(row.template))
        if key not in self._templates:
            self._templates = {k: v for k, v in self._templates.items() if k[0] != row.id}
            self._templates[key] = self.parse(row.template, row.template_file)
        return self._templates[key]

    def forget_template(self, infra_id: str) -> None:
        """Drop the parsed template of an infrastructure from the cache."""
        self._templates = {k: v for k, v in self._templates.items() if k[0] != infra_id}

    # -- lifecycle -------------------------------------------------------------------------
    async def create(
        self,
        who: Identity,
        text: str,
        file_name: str = "template.yaml",
        *,
        wait_launch: bool = False,
    ) -> str:
        infra_id = new_id()  # uuid4: random, never from the client
        template, language = await self.parse_async(text, file_name)
        private, public = generate_key_pair()
        with self.quota_lock(who.key):  # the check and the rows it allows: one step
            self.check_quota(who.key, sum(template.counts().values()))  # before any row
            self.store.create_infrastructure(
                id=infra_id,
                owner_key=who.key,
                owner_name=who.name,
                name=template.name,
                template=text,
                template_format=language,  # RADL ones have no tosca/outputs (IM: 403)
                template_file=Path(file_name).name,
                provider=self.provider.name,
                ssh_private_key=self.seal_private_key(private),
                ssh_public_key=public,
            )
            self.record_access(infra_id, who)  # owners and sealed cloud lines (access.py)
            self._templates[(infra_id, hash(text))] = template
            self.store.add_nodes(
                infra_id, [name for name, count in template.counts().items() for _ in range(count)]
            )
        self.scheduler.kick(infra_id)
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
        self.store.request(row.id, desired="absent")
        await self.scheduler.cancel(row.id)  # a deployment under way stops; cleanup follows
        self.scheduler.kick(row.id)
        if not wait:
            return
        settled = await self.wait_reconciled(row.id)
        gone = self.store.get(row.id)
        if settled and gone is not None and gone.phase == "deleted":
            self.forget_template(row.id)
            return
        if not force:
            raise ServiceError("Error destroying the infrastructure: the provider did not remove "
                               "everything; see contmsg, or destroy with force")  # fmt: skip
        await self.scheduler.cancel(row.id)
        self.store.set_phase(row.id, "deleted", "forced")

    async def wait_reconciled(self, infra_id: str, timeout: float = 900) -> bool:
        """Wait until the infrastructure's current generation is brought about."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            row = self.store.get(infra_id)
            if row is None or row.reconciled >= row.generation:
                return True
            await asyncio.sleep(0.1)
        return False

    async def resume(self) -> None:
        """At start-up: remove orphans, then finish whatever work was under way."""
        await self.scheduler.start()
        await self.monitors.start()

    async def shutdown(self) -> None:
        await self.monitors.stop()
        await self.scheduler.stop()
        await self.deployer.runners.close()  # runners of configurations the stop cut short

    async def _wait_launched(self, infra_id: str, timeout: float = 600) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            row = self.store.get(infra_id)
            if row is None or row.phase not in ("creating", "launching"):
                return
            await asyncio.sleep(0.1)

    # -- reads -----------------------------------------------------------------------------
    # Ownership lives in access.py (AccessMixin); declared here for the methods that use it.
    def list_ids(self, who: Identity, pattern: str | None = None) -> list[str]:
        raise NotImplementedError

    def infrastructure(self, who: Identity, infra_id: str) -> InfrastructureRow:
        """The caller's live infrastructure, or NotFoundError / Forbidden."""
        raise NotImplementedError

    def record_access(self, infra_id: str, who: Identity) -> None:
        raise NotImplementedError

    def check_quota(self, owner_key: str, total: int, infra_id: str | None = None) -> None:
        """QuotaExceeded past the owner's node quotas (quotas.py)."""
        raise NotImplementedError

    @contextmanager
    def quota_lock(self, owner_key: str) -> Iterator[None]:
        """Hold the owner's lock (store/owner_lock.py) around a quota check and the node rows
        it allows, so concurrent requests of one user (on any server) cannot together pass
        the per-user quota. No await inside: the body is short and synchronous."""
        try:
            with owner_lock(self.store, owner_key):
                yield
        except OwnerBusy as exc:
            raise Conflict(str(exc)) from None

    # Imports' adoption of provider resources lives in adoption.py (AdoptionMixin).
    async def adoption(self, who: Identity, node: dict[str, Any]) -> str:
        raise NotImplementedError

    def refuse_detached(self, row: InfrastructureRow, vm_ids: Iterable[int] | None,
                        action: str) -> None:  # fmt: skip
        raise NotImplementedError

    def nodes(self, who: Identity, infra_id: str) -> list[NodeRow]:
        return self.store.nodes(self.infrastructure(who, infra_id).id)

    def node(self, who: Identity, infra_id: str, vm_id: str) -> NodeRow:
        self.infrastructure(who, infra_id)
        if not (vm_id.isascii() and vm_id.isdigit() and len(vm_id) <= 9):
            raise NotFoundError("Invalid VM ID")  # int() would take " 1", "1_0", "١"
        number = int(vm_id)
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
        resolve = attribute_resolver(template, self.store.nodes(row.id),
                                     private_key=self.private_key(row),
                                     functions=self.functions.attributes(row.id, template))
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
                    "site": n.site,  # where it runs (None: the server's own back-end)
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
            # the work asked for is done when reconciled reaches generation
            "generation": row.generation,
            "reconciled": row.reconciled,
            "created_at": row.created_at.isoformat(),
            "nodes": nodes,
            # OSCAR services and Lambda functions (engine/functions.py)
            "functions": [{"name": f.name, "backend": f.backend, "site": f.site,
                           "service": f.service, "endpoint": f.endpoint, "state": f.state,
                           "error": f.error} for f in self.store.functions(row.id)],
        }
