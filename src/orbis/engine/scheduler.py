"""Who works on which infrastructure, and when.

`kick(id)` asks for an infrastructure to be reconciled. The work runs in a task of this process
once it holds the infrastructure's lease in the database, so several service processes can share
one database without ever working on the same infrastructure at once. A sweeper picks up work
nobody is doing (after a crash, or left by another process), and at start-up the labelled
resources of the server's own back-end and of the operator's sites are compared with the store:
what the store does not expect is removed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from concurrent.futures import ThreadPoolExecutor

from orbis.engine.reconciler import Reconciler
from orbis.placement.sites import SiteRegistry
from orbis.providers.base import Provider, ProviderError
from orbis.redact import redact
from orbis.store.coordination import Leases
from orbis.store.repository import Store

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, store: Store, reconciler: Reconciler, provider: Provider,
                 leases: Leases, sweep_every: float = 2.0,
                 sites: SiteRegistry | None = None) -> None:  # fmt: skip
        self.sites = sites
        self.store = store
        self.reconciler = reconciler
        self.provider = provider
        self.leases = leases
        self.sweep_every = sweep_every
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Clean what no infrastructure owns, then resume every unfinished piece of work."""
        # Provider calls block in threads: give them as many threads as launches may run at once
        workers = self.reconciler.parallel + 8
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=workers))
        await asyncio.to_thread(self.remove_orphans)
        for infra_id in self.store.pending_work():
            self.kick(infra_id)
        self._sweeper = asyncio.create_task(self._sweep())

    async def stop(self) -> None:
        tasks = [*self.tasks.values(), *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def kick(self, infra_id: str) -> None:
        task = self.tasks.get(infra_id)
        if task is not None and not task.done():
            return  # the running task re-reads the generation before it ends
        self.tasks[infra_id] = asyncio.create_task(self._work(infra_id))

    async def cancel(self, infra_id: str) -> None:
        """Stop this process's work on an infrastructure (its lease is released)."""
        task = self.tasks.pop(infra_id, None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _work(self, infra_id: str) -> None:
        name = f"infrastructure:{infra_id}"
        while not self.leases.try_acquire(name):
            if infra_id not in self.store.pending_work():
                return  # another process finished it meanwhile
            await asyncio.sleep(0.2 + random.random() * 0.3)
        renewer = asyncio.create_task(self._renew(name, asyncio.current_task()))
        try:
            await self.reconciler.converge(infra_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # recorded for the user rather than lost in a task
            log.exception("infrastructure %s", infra_id)
            said = redact(str(exc))  # a cloud's error text may echo the credentials sent
            self.store.append_log(infra_id, f"Internal error: {said}\n")
            self.store.set_phase(infra_id, "done", f"internal error: {said}")
            row = self.store.get(infra_id)
            if row is not None:  # do not retry the same failure in a loop
                self.store.mark_reconciled(infra_id, row.generation)
        finally:
            renewer.cancel()
            self.leases.release(name)

    async def _renew(self, name: str, worker: asyncio.Task[None] | None) -> None:
        while True:
            await asyncio.sleep(self.leases.ttl / 3)
            if not await asyncio.to_thread(self.leases.renew, name) and worker is not None:
                log.error("lost the lease %s; stopping that work", name)
                worker.cancel()  # someone else took over: never work on it twice
                return

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_every)
            try:
                for infra_id in self.store.pending_work():
                    self.kick(infra_id)
            except Exception:
                log.exception("sweep")

    def remove_orphans(self) -> list[str]:
        """Remove resources whose infrastructure or node the store does not know or has
        deleted, on the server's own back-end and on the operator's sites (ORBIS_SITES: the
        only clouds whose credentials the server holds); returns what was removed."""
        removed = self._sweep_site(None, self.provider)
        for site, provider in self._operator_sites():
            removed += [f"{item} at site {site}" for item in self._sweep_site(site, provider)]
        for item in removed:
            log.warning("removed orphan %s", item)
        return removed

    def _operator_sites(self) -> list[tuple[str, Provider]]:
        """(site id, provider) of the operator's cloud sites (ORBIS_SITES)."""
        if self.sites is None:
            return []
        found = []
        for site in self.sites.sites_for([]):
            if not site.shared or site.local:
                continue
            try:
                found.append((site.id, self.sites.provider(site)))
            except ProviderError as exc:
                log.warning("site %s: cannot look for orphans: %s", site.id, exc)
        return found

    def _sweep_site(self, site: str | None, provider: Provider) -> list[str]:
        removed: list[str] = []
        try:
            machines = provider.list_owned()
            infra_ids = {m.infrastructure_id for m in machines if m.infrastructure_id}
            infra_ids |= provider.owned_infrastructures()
            # machines an import adopted keep their old infrastructure's label: not orphans
            adopted = self.store.adopted_provider_ids()
            still_used = {m.infrastructure_id for m in machines if m.provider_id in adopted}
            machines = [m for m in machines if m.provider_id not in adopted]
            for infra_id in infra_ids - still_used:
                row = self.store.get(infra_id)
                if row is None or (row.deleted and row.phase == "deleted"):
                    provider.cleanup(infra_id)
                    removed.append(f"infrastructure {infra_id}")
            for machine in machines:
                if not machine.infrastructure_id or machine.vm_id is None:
                    continue
                node = self.store.node(machine.infrastructure_id, machine.vm_id)
                # Node records (with their site) are written before anything is launched, so
                # a machine without one, whose node is deleted, or that is not where its node
                # is (a launch the engine moved on from) belongs to nobody. (A node still
                # wanted "absent" but not deleted is the reconciler's to remove.)
                if node is None or node.deleted or (node.site or None) != site:
                    provider.destroy(machine.provider_id)
                    removed.append(f"machine {machine.provider_id}")
        except ProviderError as exc:
            log.warning("site %s: cannot sweep its resources: %s", site or "local", exc)
        return removed
