"""Who works on which infrastructure, and when.

`kick(id)` asks for an infrastructure to be reconciled. The work runs in a task of this process
once it holds the infrastructure's lease in the database (store/coordination.py), so several
servers can share one database without ever working on the same infrastructure at once. Every
`poll_every` seconds the store is polled for work nobody holds: queued by another server, left
by one that died (its lease expired) or by this one's earlier failure to reach the database; the
free leases are claimed in one statement (SKIP LOCKED) and their work started here. At start-up
the labelled resources of the server's own back-end and of the operator's sites are compared
with the store: what the store does not expect is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.exc import DBAPIError

from orbis.config import coordination_settings
from orbis.engine.reconciler import Reconciler
from orbis.placement.sites import SiteRegistry
from orbis.providers.base import Provider, ProviderError
from orbis.redact import redact
from orbis.store.coordination import Leases
from orbis.store.repository import Store

log = logging.getLogger(__name__)


def lease_name(infra_id: str) -> str:
    return f"infrastructure:{infra_id}"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class Scheduler:
    def __init__(self, store: Store, reconciler: Reconciler, provider: Provider,
                 leases: Leases, sweep_every: float | None = None,
                 sites: SiteRegistry | None = None) -> None:  # fmt: skip
        self.sites = sites
        self.store = store
        self.reconciler = reconciler
        self.provider = provider
        self.leases = leases
        self.sweep_every = (sweep_every if sweep_every is not None
                            else coordination_settings().poll_seconds)  # fmt: skip
        self._loop: asyncio.AbstractEventLoop | None = None
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Clean what no infrastructure owns, then resume every unfinished piece of work."""
        # Provider calls block in threads: give them as many threads as launches may run at once
        workers = self.reconciler.parallel + 8
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=workers))
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.remove_orphans)
        await asyncio.to_thread(self.poll)
        self._sweeper = asyncio.create_task(self._sweep())

    async def stop(self) -> None:
        tasks = [*self.tasks.values(), *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def kick(self, infra_id: str) -> None:
        """Work on an infrastructure here if its lease is free; if another server holds it,
        that one sees the new generation before it lets go, or a later poll finds it."""
        task = self.tasks.get(infra_id)
        if task is not None and not task.done():
            return  # the running task re-reads the generation before it ends
        self.tasks[infra_id] = asyncio.create_task(self._work(infra_id, claimed=False))

    async def cancel(self, infra_id: str) -> None:
        """Stop this process's work on an infrastructure (its lease is released)."""
        task = self.tasks.pop(infra_id, None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def running(self) -> list[str]:
        return [i for i, task in self.tasks.items() if not task.done()]

    async def _work(self, infra_id: str, claimed: bool) -> None:
        name = lease_name(infra_id)
        try:
            if not claimed and not await asyncio.to_thread(self.leases.try_acquire, name):
                return
        except DBAPIError as exc:
            log.warning("database unreachable, %s waits for it: %s", infra_id, _first_line(exc))
            return
        renewer = asyncio.create_task(self._renew(name, asyncio.current_task()))
        try:
            await self.reconciler.converge(infra_id)
        except asyncio.CancelledError:
            raise
        except DBAPIError as exc:  # the database went away: the work stays queued in it
            log.warning("database unreachable while working on %s; it resumes when the "
                        "database is back: %s", infra_id, _first_line(exc))  # fmt: skip
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
            with contextlib.suppress(DBAPIError):  # if not, it expires by itself
                await asyncio.to_thread(self.leases.release, name)

    async def _renew(self, name: str, worker: asyncio.Task[None] | None) -> None:
        """Renew the lease every third of its lifetime. Lost to another server, or not renewed
        for most of its lifetime (database unreachable), the work here stops: by then another
        server may take it, and no infrastructure is ever worked on twice at once."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.leases.ttl / 3)
            try:
                if await asyncio.to_thread(self.leases.renew, name):
                    last = time.monotonic()
                    continue
                log.error("lost the lease %s to another server; stopping that work", name)
            except DBAPIError as exc:
                if time.monotonic() - last < self.leases.ttl * 0.6:
                    continue  # retried at the next beat, before the lease can run out
                log.error("could not renew the lease %s (%s); stopping that work", name,
                          _first_line(exc))  # fmt: skip
            if worker is not None:
                worker.cancel()
            return

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_every)
            try:
                await asyncio.to_thread(self.poll)
            except DBAPIError as exc:
                log.warning("polling for work: database unreachable: %s", _first_line(exc))
            except Exception:
                log.exception("sweep")

    def poll(self) -> list[str]:
        """Claim the queued work nobody holds and start it here; the ids started."""
        busy = set(self.running())
        waiting = [i for i in self.store.pending_work() if i not in busy]
        if not waiting:
            return []
        claimed = [name.split(":", 1)[1]
                   for name in self.leases.claim([lease_name(i) for i in waiting])]  # fmt: skip
        assert self._loop is not None, "poll() runs once start() has"
        self._loop.call_soon_threadsafe(self._start_claimed, claimed)
        return claimed

    def _start_claimed(self, infra_ids: list[str]) -> None:
        for infra_id in infra_ids:
            task = self.tasks.get(infra_id)
            if task is None or task.done():
                self.tasks[infra_id] = asyncio.create_task(self._work(infra_id, claimed=True))

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
