"""Bringing an infrastructure up (launch → SSH → Ansible levels) and tearing it down.

`Deployer` is what the rest of the server uses: the reconciler's node actions and
configuration, the service's disks and placement. It holds what its parts share
(engine/deployer_base.py) and hands each action to the part for its concern: `Machines`
(engine/machines.py: launch, power, removal of nodes) and `Configuration`
(engine/configuration.py: host names, overlay, Ansible levels, added disks). What spans the
infrastructure stays here: preparing the back-end and runner, and the destroy.

Every transition is written to the store as it happens, so the API shows live progress and the
events table keeps the timeline. A node that fails stops only itself: its siblings go on.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from orbis.configure.ansible import WarmPlaybook
from orbis.engine.configuration import Configuration, level_label
from orbis.engine.deployer_base import CloudLines, DeployerBase
from orbis.engine.machines import Machines
from orbis.engine.plan import group_by_level, plan_configuration
from orbis.model.infrastructure import Compute, Template
from orbis.model.states import NodeState
from orbis.overlay import state as overlay_state
from orbis.paths import UnsafeId
from orbis.placement.ranking import Ranking
from orbis.placement.sites import Site, SiteRegistry
from orbis.providers.base import Provider, ProviderError
from orbis.runner.base import RunnerError
from orbis.store.repository import Store
from orbis.store.schema import InfrastructureRow, NodeRow

log = logging.getLogger(__name__)


class Deployer(DeployerBase):
    """The engine's work on an infrastructure's nodes, for the reconciler and the service;
    each node action and the configuration go to its parts `machines` and `configuration`.
    The arguments are DeployerBase's."""

    def __init__(
        self, store: Store, provider: Provider, work_dir: Path,
        sites: SiteRegistry | None = None, clouds: CloudLines | None = None,
        private_key: Callable[[InfrastructureRow], str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(store, provider, work_dir, sites, clouds, private_key)
        self.machines = Machines(self)
        self.configuration = Configuration(self)

    async def prepare(self, infra_id: str) -> str | None:
        """Create what nodes share on the default back-end, when the infrastructure uses it;
        the error message if that failed. Cloud sites are prepared when a node first goes
        there (only then is it known which sites are used). The recipe runner starts now
        too, in the background: it is ready by the time the nodes are."""
        infra = self.store.get(infra_id)
        if infra is not None and self.runners.uses_engine:
            self.runners.warm(infra_id, self.runner_dir(infra_id), self.write_key(infra))
        if not any(site.local for site in self.sites_of(infra_id)):
            return None
        return await self.prepare_site(infra_id, self.provider)

    async def warm_ahead(self, infra_id: str, template: Template) -> None:
        """While the nodes launch: once the runner is up, start the ansible-playbook of the
        first configuration level ahead (WarmPlaybook), for as many hosts as the
        infrastructure has. Awaited with the launches, so a destroy's cancellation stops it
        before it could start a runner again; a runner that cannot start is configure's to
        report."""
        infra = self.store.get(infra_id)
        if (infra is None or not self.runners.uses_engine or infra_id in self.warm
                or not group_by_level(plan_configuration(template))):  # fmt: skip
            return
        try:
            runner = await self.runners.get(infra_id, self.runner_dir(infra_id),
                                            self.write_key(infra))  # fmt: skip
        except RunnerError:
            return
        hosts = [n for n in self.store.nodes(infra_id)
                 if n.adoption != "detached" and n.desired == "running"]  # fmt: skip
        if runner.shares_folder and hosts:
            self.warm[infra_id] = WarmPlaybook(runner, len(hosts), level_label(1))

    # -- node actions (each idempotent; the reconciler decides which to run) ----------------
    async def rank_sites(self, compute: Compute, sites: list[Site]
                         ) -> tuple[Ranking, str | None]:  # fmt: skip
        """The sites that may host `compute`, best first, and why the others may not (the
        catalogues are read through the registry's cache); plus a warning worth logging."""
        return await self.machines.rank_sites(compute, sites)

    async def launch_node(self, infra: InfrastructureRow, template: Template, row: NodeRow,
                          launched: Callable[[], None] = lambda: None) -> bool:  # fmt: skip
        """Launch one node (or find it) and wait for its SSH; False if it failed (recorded).
        `launched` is called once the provider's part is over (Machines.launch_node)."""
        return await self.machines.launch_node(infra, template, row, launched)

    async def start_node(self, infra: InfrastructureRow, row: NodeRow,
                         started: Callable[[], None] = lambda: None) -> bool:  # fmt: skip
        return await self.machines.start_node(infra, row, started)

    async def reboot_node(self, infra: InfrastructureRow, row: NodeRow,
                          started: Callable[[], None] = lambda: None) -> bool:  # fmt: skip
        return await self.machines.reboot_node(infra, row, started)

    async def stop_node(self, infra: InfrastructureRow, row: NodeRow) -> bool:
        return await self.machines.stop_node(infra, row)

    async def destroy_node(self, infra: InfrastructureRow, row: NodeRow) -> bool:
        """Remove the node's machine, also one a crashed launch left unrecorded."""
        return await self.machines.destroy_node(infra, row)

    # -- configure -------------------------------------------------------------------------
    async def configure(
        self, infra: InfrastructureRow, template: Template, targets: list[NodeRow]
    ) -> None:
        """Run the configuration plan on `targets` (level by level); each ends configured or
        unconfigured. Other nodes only lend their addresses to the playbooks."""
        await self.configuration.configure(infra, template, targets)

    async def prepare_disks(self, infra: InfrastructureRow, row: NodeRow,
                            disks: list[dict[str, Any]]) -> str:  # fmt: skip
        """Format and mount disks added to a running node (alter); what was done. Raises
        ProviderError with the node's answer (Configuration.prepare_disks)."""
        return await self.configuration.prepare_disks(infra, row, disks)

    # -- destroy ---------------------------------------------------------------------------
    async def destroy(self, infra_id: str) -> None:
        self.store.set_phase(infra_id, "deleting")
        self.log(infra_id, "Destroying infrastructure")
        self.discard_warm(infra_id)
        self.kept.drop_all(lambda key: key[0] == infra_id)  # type: ignore[index]
        # a runner container is removed by the back-end's cleanup below (it carries the
        # infrastructure's label), together with the nodes rather than before them
        await self.runners.release(infra_id, remove=not self.runners.uses_engine)
        sites = {row.site for row in self.store.nodes(infra_id, include_deleted=True)}
        sites |= set(self.store.site_uses(infra_id))  # sites only tried count too
        clouds = self.clouds(infra_id)
        providers = {self.sites.provider_by_id(site, clouds) for site in sites if site}
        if any(s.local for s in self.sites_of(infra_id)) or None in sites:
            providers.add(self.provider)
        if self.runners.uses_engine:  # the recipe runner's network is there, nodes or not
            providers.add(self.provider)
        adopted = [r for r in self.store.nodes(infra_id) if r.adoption == "adopted"]
        origins = await asyncio.to_thread(self._origins_of, adopted)
        for row in self.store.nodes(infra_id):
            # An adopted node's resource is labelled with the infrastructure it was exported
            # from, so cleanup (by this id) would miss it: removed by its own id. A detached one
            # is only forgotten: it belongs to someone else.
            if row.adoption == "adopted" and row.provider_id:
                await self.retrying(partial(self.provider_of(row).destroy, row.provider_id))
            elif row.adoption == "detached":
                self.log(infra_id, f"VM {row.vm_id} is detached: forgotten, not destroyed")
        for provider in providers:
            await self.retrying(partial(provider.cleanup, infra_id))
        for provider, origin in origins:
            await self.retrying(partial(self._cleanup_origin, provider, origin))
        for snap in self.store.snapshots(infra_id):
            if snap.auto_delete:  # IM's auto_delete: the image goes with the infrastructure
                owner = self.sites.provider_by_id(snap.site, clouds)
                await self.retrying(partial(owner.delete_image, snap.url))
                self.store.snapshot_deleted(snap.id)
                self.log(infra_id, f"Deleted image {snap.url}")
        for row in self.store.nodes(infra_id):
            self.store.update_node(
                infra_id, row.vm_id, state=NodeState.OFF, deleted=True, message="destroyed"
            )
        try:
            shutil.rmtree(self.workdir(infra_id), ignore_errors=True)
        except UnsafeId as exc:  # no folder was ever made for it: nothing to remove
            self.log(infra_id, f"Not removing a work folder: {exc}")
        overlay_state.forget(self.store, infra_id)  # its CA dies with it
        self.store.set_phase(infra_id, "deleted")

    def _origins_of(self, adopted: list[NodeRow]) -> set[tuple[Provider, str]]:
        """(provider, id of the infrastructure it was exported from) of adopted nodes."""
        found: set[tuple[Provider, str]] = set()
        mine = {row.provider_id for row in adopted if row.provider_id}
        for provider in {self.provider_of(row) for row in adopted if row.provider_id}:
            try:
                machines = provider.list_owned()
            except ProviderError as exc:  # the start-up sweep gets them later
                log.warning("cannot tell where adopted nodes came from: %s", exc)
                continue
            found |= {(provider, m.infrastructure_id) for m in machines
                      if m.provider_id in mine and m.infrastructure_id}  # fmt: skip
        return found

    def _cleanup_origin(self, provider: Provider, origin: str) -> None:
        """The exported infrastructure's network (and volumes) outlived its adopted nodes: once
        no machine of it is left and the store has deleted it, nothing else would remove them
        before the next start-up sweep."""
        row = self.store.get(origin)
        if row is not None and not (row.deleted and row.phase == "deleted"):
            return
        if any(m.infrastructure_id == origin for m in provider.list_owned()):
            return  # still adopted by another import
        provider.cleanup(origin)
