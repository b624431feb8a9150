"""Bringing an infrastructure up (launch → SSH → Ansible levels) and tearing it down.

Every transition is written to the store as it happens, so the API shows live progress and the
events table keeps the timeline. A node that fails stops only itself: its siblings go on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from orbis.configure import galaxy, hosts, oscar_local, storage, workfiles
from orbis.configure.ansible import (
    HostResult,
    PlaybookError,
    StepRun,
    Target,
    WarmPlaybook,
    check_variables,
    load_plays,
    run_level,
)
from orbis.configure.artifacts import ArtifactError, artifact_downloads, script_play
from orbis.configure.artifacts import fetch as fetch_artifact
from orbis.configure.ssh import KeptConnections, SSHNotReady, run_command, wait_ssh
from orbis.engine import naming
from orbis.engine.attributes import attribute_resolver
from orbis.engine.overlay_routes import (
    remember_routes,
    route_sites,
    routes_on_cloud,
    site_routes,
    stale_routes,
)
from orbis.engine.plan import PlannedStep, group_by_level, plan_configuration
from orbis.lang.functions import evaluate
from orbis.model.hostnames import given_name
from orbis.model.infrastructure import Compute, ContainerApp, Operation, Template
from orbis.model.states import NodeState
from orbis.overlay import state as overlay_state
from orbis.overlay.rights import node_rights
from orbis.overlay.setup import OverlaySetup
from orbis.ownership import OwnerMarks
from orbis.paths import UnsafeId, id_folder, private_folder
from orbis.placement.ranking import Candidate, Ranking, rank
from orbis.placement.sites import Site, SiteRegistry
from orbis.providers.base import Machine, NodeSpec, Provider, ProviderError, Transient
from orbis.providers.cloudinit import user_data
from orbis.redact import redact
from orbis.runner.base import Runner, RunnerError
from orbis.runner.frontend import FrontendRunner, FrontLogin
from orbis.runner.pool import Frontend, RunnerPool
from orbis.store.repository import Store
from orbis.store.schema import InfrastructureRow, NodeRow

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRIES = 3  # transient provider errors: tries after the first
APP_PREFIX = "app:"  # provider id of a container app's row (it is no machine)
BACKOFF = 0.5  # seconds before the first retry; doubles each time
# nodes that lend their inventory entry to a level they are not configured in
CONFIGURED_OR_UP = {NodeState.CONFIGURED, NodeState.RUNNING, NodeState.UNCONFIGURED}


def stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def local_image(image: str | None) -> tuple[str | None, str | None]:
    """The local image to run for a template's image, and a warning when it is substituted.

    `None` means the default node image. Other clouds' image URLs run on the node image too,
    so any IM template can be tried locally first.
    """
    if not image:
        return None, "no image requested: using the local node image"
    if image.startswith("docker://"):
        return image.removeprefix("docker://"), None
    if image.startswith("local://"):  # local://SITE or local://SITE/NAME (providers/local_sites)
        return image.removeprefix("local://").partition("/")[2] or None, None
    if "://" in image:
        return None, f"image '{image}' belongs to another cloud: using the local node image"
    return image, None  # IM reads a bare name as a container image


CloudLines = Callable[[str], list[dict[str, str]]]


def app_sites(app: ContainerApp, sites: list[Site]) -> list[Site]:
    """The sites a container app may run on: Kubernetes ones (the one its placement names)."""
    return [s for s in sites if s.type.lower() == "kubernetes"
            and (not app.cloud_id or s.id == app.cloud_id)]  # fmt: skip


class Deployer:
    """`provider` is the server's own back-end; nodes go to the sites of the infrastructure's
    cloud lines (`clouds`, by infrastructure id) through `sites`, or to `provider` when none."""

    def __init__(
        self, store: Store, provider: Provider, work_dir: Path,
        sites: SiteRegistry | None = None, clouds: CloudLines | None = None,
        private_key: Callable[[InfrastructureRow], str] | None = None,
    ) -> None:  # fmt: skip
        self.store = store
        self.provider = provider
        self.work_dir = work_dir
        self.sites = sites or SiteRegistry(provider)
        self.clouds: CloudLines = clouds or (lambda _infra_id: [])
        # the infrastructure's SSH key, unsealed (the service's secrets; stored sealed)
        self.private_key = private_key or (lambda row: row.ssh_private_key)
        self._prepared: set[tuple[str, str]] = set()  # (infrastructure, site) done this run
        self.marks = OwnerMarks.ephemeral()  # the service sets the server's (configure_access)
        self.runners = RunnerPool(provider)  # where recipes run (docs/runner.md)
        # an ansible-playbook started ahead for an infrastructure's next level (run_level)
        self._warm: dict[str, WarmPlaybook] = {}
        # the private network across sites; the service gives it its sealer (configure_access)
        self.overlay = OverlaySetup(store, self._on_node, self._node_log)
        # the SSH wait's connection to a new node, kept for naming it (_name_nodes)
        self._kept = KeptConnections()

    def workdir(self, infra_id: str) -> Path:
        """The infrastructure's folder under the work dir; UnsafeId for an id that is not of
        the server's shape or would lead outside it (paths.id_folder)."""
        return id_folder(self.work_dir, infra_id)

    def runner_dir(self, infra_id: str) -> Path:
        """The part of the work folder the infrastructure's runner sees (and may write)."""
        return self.workdir(infra_id) / "runner"

    # -- node actions (each idempotent; the reconciler decides which to run) ----------------
    def provider_of(self, row: NodeRow) -> Provider:
        """The provider of the site a node was placed on (no credentials read for the
        server's own back-end: configure asks this for every node)."""
        if not row.site:
            return self.provider
        return self.sites.provider_by_id(row.site, self.clouds(row.infrastructure_id))

    def sites_of(self, infra_id: str) -> list[Site]:
        return self.sites.sites_for(self.clouds(infra_id))

    async def prepare(self, infra_id: str) -> str | None:
        """Create what nodes share on the default back-end, when the infrastructure uses it;
        the error message if that failed. Cloud sites are prepared when a node first goes
        there (only then is it known which sites are used). The recipe runner starts now
        too, in the background: it is ready by the time the nodes are."""
        infra = self.store.get(infra_id)
        if infra is not None and self.runners.uses_engine:
            self.runners.warm(infra_id, self.runner_dir(infra_id), self._write_key(infra))
        if not any(site.local for site in self.sites_of(infra_id)):
            return None
        return await self._prepare_site(infra_id, self.provider)

    async def warm_ahead(self, infra_id: str, template: Template) -> None:
        """While the nodes launch: once the runner is up, start the ansible-playbook of the
        first configuration level ahead (WarmPlaybook), for as many hosts as the
        infrastructure has. Awaited with the launches, so a destroy's cancellation stops it
        before it could start a runner again; a runner that cannot start is configure's to
        report."""
        infra = self.store.get(infra_id)
        if (infra is None or not self.runners.uses_engine or infra_id in self._warm
                or not group_by_level(plan_configuration(template))):  # fmt: skip
            return
        try:
            runner = await self.runners.get(infra_id, self.runner_dir(infra_id),
                                            self._write_key(infra))  # fmt: skip
        except RunnerError:
            return
        hosts = [n for n in self.store.nodes(infra_id)
                 if n.adoption != "detached" and n.desired == "running"]  # fmt: skip
        if runner.shares_folder and hosts:
            self._warm[infra_id] = WarmPlaybook(runner, len(hosts), _level_label(1))

    def _discard_warm(self, infra_id: str) -> None:
        warm = self._warm.pop(infra_id, None)
        if warm is not None:
            warm.discard()

    async def _prepare_site(self, infra_id: str, provider: Provider) -> str | None:
        key = (infra_id, provider.site)
        if key in self._prepared:
            return None
        if provider is not self.provider:  # before the call: what it makes there, destroy cleans
            self.store.add_site_use(infra_id, provider.site)
        try:
            await self._retrying(lambda: provider.prepare(infra_id))
        except ProviderError as exc:
            return str(exc)
        self._prepared.add(key)
        return None

    async def rank_sites(self, compute: Compute, sites: list[Site]
                         ) -> tuple[Ranking, str | None]:  # fmt: skip
        """The sites that may host `compute`, best first, and why the others may not (the
        catalogues are read through the registry's cache); plus a warning worth logging."""
        if len(sites) == 1 and sites[0].local and (sites[0].shared or not compute.cloud_id):
            # the common case: no cloud line at all, only the server's own back-end (where
            # an IM template's placement is tried too, as its cloud images are)
            warning = None
            if compute.cloud_id:
                warning = (f"placement on '{compute.cloud_id}' ignored: the request names no "
                           "cloud; using the local back-end")  # fmt: skip
            return Ranking([Candidate(sites[0], True)], {}), warning
        infos = dict(zip([s.id for s in sites], await asyncio.gather(
            *(asyncio.to_thread(self.sites.info, s) for s in sites)
        ), strict=True))  # fmt: skip
        return rank(compute, sites, infos), None

    async def launch_node(self, infra: InfrastructureRow, template: Template, row: NodeRow,
                          launched: Callable[[], None] = lambda: None) -> bool:  # fmt: skip
        """Launch one node (or find it, if a previous run launched it) and wait for its SSH;
        False if it failed (already recorded). `launched` is called once the provider's part
        is over, before the wait for SSH (the reconciler then frees the node's action slot)."""
        app = template.containers.get(row.name)
        if app is not None:
            return await self._deploy_app(infra, row, app)
        compute = template.computes.get(row.name)
        if compute is None:
            self._fail_node(row, NodeState.FAILED, f"no node '{row.name}' in the template")
            return False
        sites = self.sites_of(infra.id)
        # log lines go in with the state change: one write per node, not one per line
        lines: list[str] = [f"Warning: {s.id}: {s.warning}" for s in sites if s.warning]
        ranking, warning = await self.rank_sites(compute, sites)
        candidates = [c.site for c in ranking.candidates]
        if warning:
            lines.append(f"Warning: {warning}")
        if len(sites) > 1 or ranking.excluded:
            lines.append(f"Sites for {row.name}: " + (", ".join(s.id for s in candidates)
                         or "none") + (f" (not {ranking.explain()})" if ranking.excluded
                                       else ""))  # fmt: skip
        if not candidates:
            self._fail_node(row, NodeState.FAILED,
                            f"no site can host {row.name}: {ranking.explain()}", lines)
            return False
        if row.site:  # a launch a crash interrupted: that site first (the machine may exist)
            candidates.sort(key=lambda s: s.id != row.site)
        failures: list[str] = []
        for number, site in enumerate(candidates):
            try:
                provider = self.sites.provider(site)
            except ProviderError as exc:
                failures.append(f"{site.id}: {exc}")
                continue
            failure = await self._prepare_site(infra.id, provider)
            if failure:
                failures.append(f"{site.id}: {failure}")
                lines.append(f"Site {site.id}: could not prepare: {failure}")
                continue
            image, warning = (local_image(compute.image) if provider.name == "local"
                              else (compute.image, None))  # fmt: skip
            if warning:
                lines.append(f"Warning: {warning}")
            where = "" if site.default_backend else f" on site {site.id}"
            lines.append(f"Launching {row.name} (VM {row.vm_id}){where}")
            # the site is recorded before the call: after a crash, it says where to look
            self.store.update_node(infra.id, row.vm_id,
                                   site=None if site.default_backend else site.id)
            spec = self._spec(infra, row, compute, image, provider, template)
            try:
                machine = await self._retrying(partial(provider.launch, spec), row)
            except Exception as exc:
                if not isinstance(exc, ProviderError):
                    # an SDK error a provider failed to type: a node failure, not a crash
                    # of the engine; its text may hold request details, so only the log has it
                    log.exception("site %s: launch of %s failed", site.id, row.name)
                    exc = ProviderError(f"unexpected {type(exc).__name__} (see the server log)")
                failures.append(f"{site.id}: {exc}")
                following = candidates[number + 1:]
                if following:
                    lines.append(f"Site {site.id} could not launch {row.name} ({exc}); "
                                 f"trying {following[0].id}")  # fmt: skip
                    await self._discard(provider, infra.id, row.vm_id)
                continue
            self.sites.forget(site)  # its quotas changed
            lines += [f"Warning: {w}" for w in machine.warnings]
            self._record_machine(row, machine, NodeState.RUNNING, "launched", lines)
            launched()
            return await self._reach(infra, row, machine, provider)
        failures += [f"{site}: {why}" for site, why in ranking.excluded.items()]
        message = "launch failed: " + "; ".join(failures) if len(failures) > 1 else (
            f"launch failed: {failures[0].split(': ', 1)[-1]}" if failures else "launch failed")
        self._fail_node(row, NodeState.FAILED, message, lines)
        return False

    async def _deploy_app(self, infra: InfrastructureRow, row: NodeRow, app: ContainerApp) -> bool:
        """A container application (IM: one system per app) on a Kubernetes site: nothing to
        reach or configure, it is done once the cluster runs it."""
        clusters = app_sites(app, self.sites_of(infra.id))
        if not clusters:
            where = f"the site '{app.cloud_id}'" if app.cloud_id else "a site"
            self._fail_node(row, NodeState.FAILED, f"container app {app.name} needs {where} of "
                            "type Kubernetes in the auth data")  # fmt: skip
            return False
        site = clusters[0]
        self.store.update_node(infra.id, row.vm_id, site=site.id)
        try:
            provider = self.sites.provider(site)
            apply = getattr(provider, "apply_app", None)
            if apply is None:
                raise ProviderError(f"{site.id} cannot run container apps")
            endpoints = await self._retrying(partial(apply, infra.id, app, app.storage), row)
        except ProviderError as exc:
            self._fail_node(row, NodeState.FAILED, f"deploying app {app.name} failed: {exc}")
            return False
        self.store.update_node(
            infra.id, row.vm_id, state=NodeState.CONFIGURED, needs_config=False,
            provider_id=f"{APP_PREFIX}{app.name}", endpoints=endpoints, error="",
            message="deployed", log_lines=[f"{stamp()} App {app.name} deployed on {site.id}: "
                                           + (", ".join(endpoints) or "no endpoints")],
        )  # fmt: skip
        return True

    async def _discard(self, provider: Provider, infra_id: str, vm_id: int) -> None:
        """Remove what a failed launch may have left at a site before trying the next."""

        def remove() -> None:
            for m in provider.list_owned():
                if m.infrastructure_id == infra_id and m.vm_id == vm_id:
                    provider.destroy(m.provider_id)

        try:
            await asyncio.to_thread(remove)
        except ProviderError as exc:
            log.warning("could not clean up after a failed launch: %s", exc)

    async def start_node(self, infra: InfrastructureRow, row: NodeRow,
                         started: Callable[[], None] = lambda: None) -> bool:  # fmt: skip
        return await self._power(infra, row, "start", started)

    async def reboot_node(self, infra: InfrastructureRow, row: NodeRow,
                          started: Callable[[], None] = lambda: None) -> bool:  # fmt: skip
        self.store.update_node(infra.id, row.vm_id, reboot_pending=False)
        return await self._power(infra, row, "reboot", started)

    async def stop_node(self, infra: InfrastructureRow, row: NodeRow) -> bool:
        if not row.provider_id:
            return True
        try:
            if row.provider_id.startswith(APP_PREFIX):
                raise ProviderError("a container app cannot be stopped (set its count to 0)")
            provider = self.provider_of(row)
            await self._retrying(lambda: provider.stop(row.provider_id or ""), row)
        except ProviderError as exc:
            self._node_log(row, f"Error: stop failed: {exc}")
            return False
        self.store.update_node(infra.id, row.vm_id, state=NodeState.STOPPED, message="stopped")
        self._node_log(row, "Stopped")
        return True

    async def destroy_node(self, infra: InfrastructureRow, row: NodeRow) -> bool:
        """Remove the node's machine, also one a crashed launch left unrecorded."""

        def remove() -> None:
            provider = self.provider_of(row)
            if (row.provider_id or "").startswith(APP_PREFIX):
                getattr(provider, "remove_app")(infra.id, row.name)  # noqa: B009
                return
            ids = {row.provider_id} if row.provider_id else set()
            ids |= {m.provider_id for m in provider.list_owned()
                    if m.infrastructure_id == infra.id and m.vm_id == row.vm_id}  # fmt: skip
            for provider_id in ids:
                provider.destroy(provider_id)

        try:
            await self._retrying(remove, row)
        except ProviderError as exc:
            self._node_log(row, f"Error: removal failed: {exc}")
            return False
        self.store.update_node(infra.id, row.vm_id, state=NodeState.OFF, deleted=True,
                               message="removed")  # fmt: skip
        self._node_log(row, "Removed")
        live = [n for n in self.store.nodes(infra.id) if not n.deleted]
        try:
            await self.overlay.revoke(infra, row, live)
        except (OSError, asyncssh.Error) as exc:
            self._node_log(row, f"Warning: overlay: revocation not sent: {exc}")
        return True

    async def _power(self, infra: InfrastructureRow, row: NodeRow, action: str,
                     started: Callable[[], None] = lambda: None) -> bool:  # fmt: skip
        provider_id = row.provider_id or ""
        try:
            if provider_id.startswith(APP_PREFIX):
                raise ProviderError(f"a container app cannot {action}")
            provider = self.provider_of(row)
            call = provider.start if action == "start" else provider.reboot
            await self._retrying(lambda: call(provider_id), row)
            machine = await self._retrying(lambda: provider.inspect(provider_id), row)
        except ProviderError as exc:
            self._node_log(row, f"Error: {action} failed: {exc}")
            return False
        # addresses may change when a machine starts again
        state = NodeState.RUNNING if row.needs_config else NodeState.CONFIGURED
        self._record_machine(row, machine, state, "started" if action == "start" else "rebooted")
        old, new = row.public_ip, machine.public_ip
        if old and new and new != old:  # the nodes it was the jump host of follow it
            for other in self.store.nodes(infra.id):
                if other.jump and other.jump.rpartition("@")[2].startswith(f"{old}:"):
                    self.store.update_node(infra.id, other.vm_id,
                                           jump=other.jump.replace(f"@{old}:", f"@{new}:"))
        started()
        return await self._reach(infra, row, machine, provider)

    def _record_machine(
        self, row: NodeRow, machine: Machine, state: NodeState, message: str,
        lines: list[str] | None = None,
    ) -> None:  # fmt: skip
        self.store.update_node(
            row.infrastructure_id, row.vm_id, state=state, provider_id=machine.provider_id,
            private_ip=machine.private_ip, public_ip=machine.public_ip,
            ssh_user=machine.ssh_user, error="", message=message,
            ssh_port=None if machine.ssh_port == 22 else machine.ssh_port,
            log_lines=[f"{stamp()} {line}" for line in lines or []],
        )  # fmt: skip

    async def _reach(self, infra: InfrastructureRow, row: NodeRow, machine: Machine,
                     provider: Provider) -> bool:  # fmt: skip
        if provider.simulated:
            return True  # simulated machines have no SSH
        address = machine.public_ip or machine.private_ip
        if not address:
            self._fail_node(row, NodeState.UNCONFIGURED, "the node has no address to reach")
            return False
        jump = None
        if not machine.public_ip and not provider.private_reachable:
            jump = await self._jump_host(infra.id, row, provider.ssh_timeout)
            if jump is None:
                self._fail_node(row, NodeState.UNCONFIGURED, "the node has no public address "
                                "and no node of its site has one to reach it through")  # fmt: skip
                return False
            self.store.update_node(infra.id, row.vm_id, jump=jump)
        keep = (self._kept.keeper((infra.id, row.vm_id), (address, machine.ssh_port,
                                                          machine.ssh_user, jump))
                if row.needs_config else None)  # fmt: skip
        try:
            seconds = await wait_ssh(address, user=machine.ssh_user, port=machine.ssh_port,
                                     private_key=self.private_key(infra), jump=jump,
                                     timeout=provider.ssh_timeout, keep=keep)  # fmt: skip
        except SSHNotReady as exc:
            self._fail_node(row, NodeState.UNCONFIGURED, str(exc))
            return False
        via = f" through {jump}" if jump else ""
        self._node_log(row, f"SSH ready at {address}{via} after {seconds:.2f} s")
        return True

    async def _jump_host(self, infra_id: str, row: NodeRow, timeout: float) -> str | None:
        """A node of the same site with a public address ("user@host:22"); waits for one
        that is still launching (the nodes of an infrastructure launch together)."""
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.store.nodes(infra_id)
            # the stored site: `row` was read before launch_node recorded where it went
            site = next((o.site for o in nodes if o.vm_id == row.vm_id), row.site)
            for other in nodes:
                if other.vm_id != row.vm_id and other.site == site and other.public_ip:
                    return f"{other.ssh_user}@{other.public_ip}:{other.ssh_port or 22}"
            # a pending node with no site yet may still land on this one
            launching = any(o.site in (site, None) and o.state == NodeState.PENDING
                            and o.vm_id != row.vm_id for o in nodes)  # fmt: skip
            if not launching or time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.5)

    async def _retrying(self, call: Callable[[], T], row: NodeRow | None = None) -> T:
        """Run a blocking provider call in a thread; retry Transient errors with backoff."""
        for attempt in range(RETRIES + 1):
            try:
                return await asyncio.to_thread(call)
            except Transient as exc:
                if attempt == RETRIES:
                    raise
                delay = BACKOFF * 2**attempt * (0.5 + random.random())  # jitter spreads retries
                if row is not None:
                    self._node_log(row, f"Transient error ({exc}); retrying in {delay:.1f} s")
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _spec(
        self, infra: InfrastructureRow, row: NodeRow, compute: Compute, image: str | None,
        provider: Provider, template: Template | None = None,
    ) -> NodeSpec:  # fmt: skip
        # a RADL `configure ... with cloud_init` recipe of this node: the VM boots with it
        hosted = [c for c in (template.components.values() if template else ())
                  if c.host == compute.name]  # fmt: skip
        recipe = next((op.inline for c in hosted for op in c.operations
                       if op.name == "cloud_init" and op.inline), None)  # fmt: skip
        cloud = provider.name not in ("local", "sim")
        user = compute.credentials.username if compute.credentials else "cloudadm"
        return NodeSpec(
            infrastructure_id=infra.id,
            vm_id=row.vm_id,
            name=row.name,
            image=image,
            num_cpus=compute.num_cpus,
            mem_size=compute.mem_size,
            public=compute.public,
            ports=tuple(compute.ports),
            ssh_public_key=infra.ssh_public_key,
            hostname=naming.host_name(compute, row.name, row.vm_id, given_name(row))[0],
            compute=compute,
            networks=tuple(template.networks.values()) if template else (),
            user_data=user_data(infra.ssh_public_key, user=user, recipe=recipe) if cloud else "",
            ssh_user=user if cloud else "root",
            owner_mark=self.marks.mark(infra.owner_key),
            net_rights=node_rights(template, compute.name),
        )

    # -- configure -------------------------------------------------------------------------
    async def configure(
        self, infra: InfrastructureRow, template: Template, targets: list[NodeRow]
    ) -> None:
        """Run the configuration plan on `targets` (level by level); each ends configured or
        unconfigured. Other nodes only lend their addresses to the playbooks."""
        apps = [r.vm_id for r in targets if r.name in template.containers]
        if apps:  # running is all there is to a container app
            self.store.update_nodes(infra.id, apps, needs_config=False, state=NodeState.CONFIGURED)
            targets = [r for r in targets if r.vm_id not in apps]
        if not targets:
            return
        if all(self.provider_of(r).simulated for r in targets):
            await self._simulate_configuration(infra, template, targets)
            return
        key_file = self._write_key(infra)
        try:
            runner = await self.runners.get(infra.id, self.runner_dir(infra.id), key_file,
                                            self._frontend(infra))  # fmt: skip
        except RunnerError as exc:
            self._log(infra.id, f"Error: configuration cannot run: {exc}")
            self.store.update_nodes(infra.id, [r.vm_id for r in targets], needs_config=False)
            for row in targets:
                self._fail_node(row, NodeState.UNCONFIGURED, f"configuration cannot run: {exc}")
            return
        try:
            await self._configure_in(runner, infra, template, targets)
        finally:
            self._discard_warm(infra.id)  # one started for a level that did not run
            await self.runners.release(infra.id)  # removed before the infrastructure is done

    async def _configure_in(self, runner: Runner, infra: InfrastructureRow, template: Template,
                            targets: list[NodeRow]) -> None:  # fmt: skip
        self.store.interrupt_steps(infra.id)  # steps a crashed run left "running"
        healthy = {row.vm_id for row in targets}
        await self._install_galaxy(infra, template, targets, runner)
        # a detached node (another owner's, named in imported data) lends nothing either
        all_nodes = [n for n in self.store.nodes(infra.id) if n.adoption != "detached"]
        await self._name_nodes(infra, template, targets, all_nodes)
        if template.overlay is not None:  # before any recipe: they may use its addresses
            for vm_id in await self.overlay.apply(infra, template, targets, all_nodes):
                healthy.discard(vm_id)
            healthy -= await self._route_sites(infra, template, all_nodes)
        # IM_NODE_CLOUD_TYPE / _SERVER by site, read once (credentials are unsealed for it)
        clouds = {s.id: (s.type, s.host) for s in self.sites_of(infra.id) if not s.local}
        levels = group_by_level(plan_configuration(template))
        for number, steps in enumerate(levels, start=1):
            rows = [r for r in self.store.nodes(infra.id) if r.vm_id in healthy]
            if not rows:
                break
            await self._run_level(infra, template, number, steps, rows, all_nodes, runner,
                                  healthy, clouds, more=number < len(levels))  # fmt: skip
        for row in targets:
            done = row.vm_id in healthy
            self.store.update_node(
                infra.id, row.vm_id, needs_config=False,
                state=NodeState.CONFIGURED if done else NodeState.UNCONFIGURED,
                message="configured" if done else "configuration failed",
            )  # fmt: skip

    async def _route_sites(self, infra: InfrastructureRow, template: Template,
                           all_nodes: list[NodeRow]) -> set[int]:  # fmt: skip
        """The overlay's site routers made routers on their clouds too (engine/overlay_routes);
        the vm ids of those the cloud refused."""
        assert template.overlay is not None
        known = overlay_state.load(self.store, infra.id)
        routes, failed = [], set()
        for row, cidrs in site_routes(template.overlay, all_nodes, known):
            try:
                if routes_on_cloud(self.provider_of(row)):
                    routes.append((row, cidrs))
            except ProviderError as exc:  # its site's credentials are gone
                self._node_log(row, f"Error: overlay: its cloud cannot be asked to route: {exc}")
                failed.add(row.vm_id)

        async def route(row: NodeRow, cidrs: list[str]) -> tuple[str, ...]:
            provider = self.provider_of(row)
            drop = stale_routes(known, row, cidrs)  # a site gone: its routes go too
            return await self._retrying(
                lambda: provider.route_through(row.provider_id or "", cidrs, drop), row)

        failed |= await route_sites(routes, route, self._node_log)
        if routes and known is not None:
            remember_routes(known, routes, failed)
            overlay_state.save(self.store, infra.id, known)
        return failed

    async def _name_nodes(self, infra: InfrastructureRow, template: Template,
                          targets: list[NodeRow], all_nodes: list[NodeRow]) -> None:  # fmt: skip
        """Give each target its host name and an /etc/hosts block with every node (IM's
        contextualization does the same); a node that cannot be named only gets a warning."""
        names = {n.vm_id: naming.host_name(template.computes.get(n.name), n.name, n.vm_id,
                                           given_name(n))
                 for n in all_nodes if not n.deleted and (n.private_ip or n.public_ip)
                 and not (n.provider_id or "").startswith(APP_PREFIX)}  # fmt: skip
        by_id = {n.vm_id: n for n in all_nodes}
        entries = [(by_id[vm].private_ip or by_id[vm].public_ip or "", f"{host}.{domain}", host)
                   for vm, (host, domain) in sorted(names.items())]  # fmt: skip

        async def name(row: NodeRow) -> None:
            host, domain = names[row.vm_id]
            command = hosts.command(host, f"{host}.{domain}", entries,
                                    sudo=row.ssh_user != "root")  # fmt: skip
            where = (row.public_ip or row.private_ip, row.ssh_port or 22, row.ssh_user, row.jump)
            try:  # on the SSH wait's connection when it is still open: no second login
                status, output = await self._on_node(
                    infra, row, command, kept=self._kept.take((infra.id, row.vm_id), where))
            except (OSError, asyncssh.Error) as exc:
                status, output = 255, str(exc) or type(exc).__name__
            if status != 0:
                self._node_log(row, f"Warning: could not set the host name and /etc/hosts: "
                                    f"{output.strip()[-300:]}")  # fmt: skip

        await asyncio.gather(*(name(r) for r in targets if r.vm_id in names))

    async def prepare_disks(self, infra: InfrastructureRow, row: NodeRow,
                            disks: list[dict[str, Any]]) -> str:  # fmt: skip
        """Format and mount disks added to a running node (alter): disks.py over one SSH
        command. Returns what was done; raises ProviderError with the node's answer."""
        command = storage.shell_command(disks, sudo=row.ssh_user != "root")
        try:
            status, output = await self._on_node(infra, row, command, timeout=600,
                                                 stdin=storage.SCRIPT.read_text())  # fmt: skip
        except (OSError, asyncssh.Error) as exc:
            raise ProviderError(f"node unreachable: {exc or type(exc).__name__}") from exc
        if status != 0:
            raise ProviderError(output.strip()[-500:] or f"exit status {status}")
        try:
            done = json.loads(output.strip().splitlines()[-1])["disks"]
        except (ValueError, KeyError, IndexError):
            return output.strip()
        return "; ".join(f"disk {d['index']} ({d['device']}): {d['action']}" for d in done)

    async def _on_node(self, infra: InfrastructureRow, row: NodeRow, command: str,
                       **options: Any) -> tuple[int, str]:  # fmt: skip
        """One shell command on a node, logged in as Ansible does (key, port, jump host)."""
        return await run_command(
            row.public_ip or row.private_ip or "", command, user=row.ssh_user,
            private_key=self.private_key(infra), port=row.ssh_port or 22, jump=row.jump, **options,
        )  # fmt: skip

    async def _install_galaxy(self, infra: InfrastructureRow, template: Template,
                              targets: list[NodeRow], runner: Runner) -> None:  # fmt: skip
        """Roles and collections the template names, before any playbook needs them.

        Best effort: node types name roles their default recipes use (the INDIGO Compute names
        indigo-dc.os_users) even when those recipes will not run, so a role that cannot be had
        is a warning here; a playbook that really needs it fails at its step, saying so.
        """
        needing = {c.name for c in template.computes.values()
                   if c.galaxy_roles or c.galaxy_collections}  # fmt: skip
        if not any(r.name in needing for r in targets):
            return
        # the roles of an OSCAR install the local back-end replaces (configure/oscar_local.py)
        unneeded = {r for c in template.components.values() if c.type == oscar_local.OSCAR_TYPE
                    and self._on_local(c.host, targets) for r in oscar_local.galaxy_roles(c)}
        roles = [r for c in template.computes.values() for r in c.galaxy_roles
                 if r not in unneeded]  # fmt: skip
        collections = [r for c in template.computes.values() for r in c.galaxy_collections]
        if not roles and not collections:
            return
        self._log(infra.id, "Installing Ansible Galaxy requirements: "
                  + ", ".join([*roles, *collections]))  # fmt: skip
        try:
            await galaxy.install(runner, roles, collections)
        except (galaxy.GalaxyError, RunnerError) as exc:
            self._log(infra.id, f"Warning: {exc}")
            for row in targets:
                if row.name in needing:
                    self._node_log(row, f"Warning: {exc}")

    async def _simulate_configuration(
        self, infra: InfrastructureRow, template: Template, targets: list[NodeRow]
    ) -> None:
        """The simulated cloud's stand-in for Ansible: each level takes `config_seconds`."""
        for number, steps in enumerate(group_by_level(plan_configuration(template)), start=1):
            self._log(infra.id, f"Configuration level {number} (simulated): "
                      + ", ".join(s.name for s in steps))  # fmt: skip
            await asyncio.sleep(self.provider.config_seconds)
        self.store.update_nodes(infra.id, [r.vm_id for r in targets],
                                needs_config=False, state=NodeState.CONFIGURED)  # fmt: skip

    async def _run_level(
        self,
        infra: InfrastructureRow,
        template: Template,
        number: int,
        steps: list[PlannedStep],
        rows: list[NodeRow],
        all_nodes: list[NodeRow],
        runner: Runner,
        healthy: set[int],
        clouds: dict[str, tuple[str, str]],
        more: bool = False,
    ) -> None:
        """One configuration level. `more`: another level follows, whose ansible-playbook
        is started ahead while this one runs."""
        host_of = {r.vm_id: f"{r.name}_{r.vm_id}" for r in rows}
        runs: list[StepRun] = []
        step_ids: dict[tuple[str, str], int] = {}
        failures: dict[tuple[str, str], HostResult] = {}
        for step in steps:
            hosts = [host_of[r.vm_id] for r in rows if r.name == step.compute]
            if not hosts:
                continue
            for r in rows:
                if r.name == step.compute:
                    step_ids[(step.name, host_of[r.vm_id])] = self.store.add_step(
                        infra.id, r.vm_id, step.name, number
                    )
            try:
                # artifacts may be fetched over HTTP: keep the event loop free meanwhile
                plays = await asyncio.to_thread(self._plays, template, step, all_nodes)
            except (PlaybookError, OSError) as exc:
                for h in hosts:
                    failures[(step.name, h)] = HostResult(ok=False, output=f"{exc}\n")
                continue
            if plays:
                runs.append(StepRun(step.name, hosts, plays))
            else:
                for h in hosts:
                    failures[(step.name, h)] = HostResult(ok=True, output="(nothing to run)\n")
        self._log(
            infra.id, f"Configuration level {number}: " + ", ".join(sorted({s.name for s in steps}))
        )
        for key, step_id in step_ids.items():
            if key not in failures:
                self.store.update_step(step_id, "running")
        results: dict[tuple[str, str], HostResult] = dict(failures)
        if runs:
            first = naming.master(n for n in all_nodes if not n.deleted)
            # from a front-end runner, its site's nodes are reached directly at private addresses
            front = runner.login if isinstance(runner, FrontendRunner) else None
            # nodes configured before stay in the inventory, aimed at by no play: a new node's
            # recipe may read from them (delegate_to), e.g. an elastic worker the front-end's key
            others = [n for n in all_nodes if n.vm_id not in host_of and not n.deleted
                      and n.desired == "running" and n.state in CONFIGURED_OR_UP
                      and (n.private_ip or n.public_ip)]  # fmt: skip
            on_site = {r.vm_id for r in [*rows, *others]
                       if front and r.private_ip and r.site == front.site}  # fmt: skip
            targets = [
                Target(
                    host=host_of.get(r.vm_id) or f"{r.name}_{r.vm_id}",
                    address=(r.private_ip if r.vm_id in on_site else r.public_ip or r.private_ip)
                    or "",
                    user=r.ssh_user,
                    port=r.ssh_port or 22,
                    jump=None if r.vm_id in on_site else r.jump,
                    groups=(r.name,),
                    variables=naming.im_variables(
                        template, r, first, infra.id,
                        *clouds.get(r.site or "", ("Local", "localhost")),
                    ),
                )
                for r in [*rows, *others]
            ]
            warm = self._warm.pop(infra.id, None)  # started for this level while nodes launched
            if more and runner.shares_folder:
                self._warm[infra.id] = WarmPlaybook(runner, len(targets), _level_label(number + 1))
            try:
                ran, output = await run_level(runner, targets, runs, label=_level_label(number),
                                              warm=warm)  # fmt: skip
            except (RunnerError, OSError) as exc:
                output = f"the runner failed: {exc}\n"
                ran = {(s.name, h): HostResult(ok=False, output=output) for s in runs
                       for h in s.hosts}  # fmt: skip
            self._log(infra.id, f"Ansible output of level {number} (in {runner.where}):\n"
                      f"{output.rstrip()}")  # fmt: skip
            results.update(ran)
        vm_of = {h: vm for vm, h in host_of.items()}
        for (step_name, host), result in sorted(results.items()):
            vm_id = vm_of[host]
            status = "ok" if result.ok else "failed"
            self.store.update_step(step_ids[(step_name, host)], status, result.output)
            row = next(r for r in rows if r.vm_id == vm_id)
            self._node_log(row, f"Step {step_name}: {status}\n{result.output.rstrip()}")
            if not result.ok and vm_id in healthy:
                healthy.discard(vm_id)
                self._fail_node(row, NodeState.RUNNING, f"step {step_name} failed")

    def _plays(
        self, template: Template, step: PlannedStep, nodes: list[NodeRow]
    ) -> list[dict[str, Any]]:
        """The plays of a step's operations, with each operation's inputs as variables.

        URL recipes are fetched now (mirror, cache, HTTP: orbis.configure.artifacts). A type's
        own recipe (inherited) that cannot be fetched and gets no values (all inputs empty) is
        skipped with a warning, so e.g. an unreachable os_users recipe does not fail the node.
        """
        resolve = attribute_resolver(template, nodes, self_node=step.node)
        plays: list[dict[str, Any]] = []
        component = template.components.get(step.node)
        local = self._on_local(step.compute, nodes)
        for op in step.operations:
            if local and oscar_local.replaces(component, op):
                # the local back-end's OSCAR: the stand-in (configure/oscar_local.py)
                for row in nodes:
                    if row.name == step.compute and not row.deleted:
                        self._node_log(row, f"{step.node}: the local back-end runs the OSCAR "
                                            "stand-in here instead of OSCAR's Kubernetes "
                                            "install (docs/functions.md)")  # fmt: skip
                variables = evaluate(op.inputs, resolve) if op.inputs else {}
                check_variables(variables, f"{step.node}.{op.name}")
                plays.extend({**play, "vars": variables} for play in oscar_local.plays())
                continue
            try:
                text, origin = self._playbook_text(op)
            except ArtifactError as exc:
                if not (op.inherited and all(v in (None, "", [], {}) for v in op.inputs.values())):
                    raise PlaybookError(f"{step.node}.{op.name}: {exc}") from exc
                for row in nodes:
                    if row.name == step.compute and not row.deleted:
                        self._node_log(row, f"Warning: {step.node}.{op.name} skipped: {exc}")
                continue
            if text is None:
                continue
            downloads, inputs = artifact_downloads(op.inputs)
            variables = evaluate(inputs, resolve) if inputs else {}
            check_variables(variables, f"{step.node}.{op.name}")
            if downloads:
                plays.append({"name": f"artifacts of {op.name}", "tasks": downloads})
            if not origin.endswith((".yml", ".yaml")) and "://" in origin:
                plays.append(script_play(origin, text, variables))  # IM runs other files as is
                continue
            for play in load_plays(text, origin):
                plays.append({**play, "vars": {**(play.get("vars") or {}), **variables}})
        return plays

    def _on_local(self, compute: str, nodes: list[NodeRow]) -> bool:
        """Whether the machines of `compute` are on the local back-end."""
        rows = [n for n in nodes if n.name == compute and not n.deleted]
        return bool(rows) and all(self.provider_of(n).name == "local" for n in rows)

    def _playbook_text(self, op: Operation) -> tuple[str | None, str]:
        if op.inline is not None:
            return op.inline, f"inline {op.name}"
        impl = op.implementation or ""
        if "://" in impl:
            return fetch_artifact(impl), impl  # ArtifactError names the URL and the cause
        # Never read files of the server's own disk on behalf of a template.
        raise PlaybookError(
            f"playbook '{Path(impl).name}' is a file on the client's machine; "
            "send it inline (`orbis deploy` does) or by URL"
        )

    # -- destroy ---------------------------------------------------------------------------
    async def destroy(self, infra_id: str) -> None:
        self.store.set_phase(infra_id, "deleting")
        self._log(infra_id, "Destroying infrastructure")
        self._discard_warm(infra_id)
        self._kept.drop_all(lambda key: key[0] == infra_id)  # type: ignore[index]
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
                await self._retrying(partial(self.provider_of(row).destroy, row.provider_id))
            elif row.adoption == "detached":
                self._log(infra_id, f"VM {row.vm_id} is detached: forgotten, not destroyed")
        for provider in providers:
            await self._retrying(partial(provider.cleanup, infra_id))
        for provider, origin in origins:
            await self._retrying(partial(self._cleanup_origin, provider, origin))
        for snap in self.store.snapshots(infra_id):
            if snap.auto_delete:  # IM's auto_delete: the image goes with the infrastructure
                owner = self.sites.provider_by_id(snap.site, clouds)
                await self._retrying(partial(owner.delete_image, snap.url))
                self.store.snapshot_deleted(snap.id)
                self._log(infra_id, f"Deleted image {snap.url}")
        for row in self.store.nodes(infra_id):
            self.store.update_node(
                infra_id, row.vm_id, state=NodeState.OFF, deleted=True, message="destroyed"
            )
        try:
            shutil.rmtree(self.workdir(infra_id), ignore_errors=True)
        except UnsafeId as exc:  # no folder was ever made for it: nothing to remove
            self._log(infra_id, f"Not removing a work folder: {exc}")
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

    # -- helpers ---------------------------------------------------------------------------
    def log(self, infra_id: str, text: str) -> None:
        """Add a line to the infrastructure's log (its contmsg)."""
        self._log(infra_id, text)

    def fail(self, row: NodeRow, message: str) -> None:
        """Mark a node failed, with the reason in its record and log."""
        self._fail_node(row, NodeState.FAILED, message)

    def _frontend(self, infra: InfrastructureRow) -> Frontend | None:
        """Where plays run when the server has no container engine: the infrastructure's
        first node with a public address (IM's master VM), with the infrastructure's key."""
        if self.runners.uses_engine:
            return None
        nodes = [n for n in self.store.nodes(infra.id) if not n.deleted and n.public_ip
                 and n.adoption != "detached" and n.provider_id]  # fmt: skip
        if not nodes:
            return None
        front = min(nodes, key=lambda n: n.vm_id)  # IM's master: the first VM
        login = FrontLogin(front.public_ip or "", front.ssh_port or 22, front.ssh_user, front.site)
        return login, self.private_key(infra)

    def _write_key(self, infra: InfrastructureRow) -> Path:
        private_folder(self.work_dir)  # 0700 from the top: keys of all infrastructures below
        # the folder is shared with what runs user recipes: never write through a planted link
        folder = workfiles.make_folder(private_folder(self.workdir(infra.id)))
        return workfiles.write_file(folder, "id_ed25519", self.private_key(infra), 0o600)

    def _fail_node(
        self, row: NodeRow, state: NodeState, message: str, lines: list[str] | None = None
    ) -> None:
        message = redact(message)  # becomes the node's error, its contmsg and an event
        lines = [redact(line) for line in [*(lines or []), f"Error: {message}"]]
        self.store.update_node(
            row.infrastructure_id, row.vm_id, state=state, error=message, message=message,
            log_lines=[f"{stamp()} {line}" for line in lines],
        )  # fmt: skip

    def _log(self, infra_id: str, text: str) -> None:
        self.store.append_log(infra_id, f"{stamp()} {redact(text)}\n")

    def _node_log(self, row: NodeRow, text: str) -> None:
        self.store.append_node_log(row.infrastructure_id, row.vm_id,
                                   f"{stamp()} {redact(text)}\n")  # fmt: skip


def _level_label(number: int) -> str:
    """The file names of a level's run in the runner folder (never reused)."""
    return f"level-{number}-{random.randrange(1 << 32):08x}"
