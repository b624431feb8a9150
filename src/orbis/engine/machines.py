"""An infrastructure's nodes as machines: placing and launching them (falling back from site
to site), waiting for their SSH, powering them and removing them; container apps likewise.

Each action is idempotent (the reconciler decides which to run) and records its outcome on the
node; a node that fails stops only itself: its siblings go on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial

import asyncssh

from orbis.configure.ssh import SSHNotReady, wait_ssh
from orbis.engine import naming
from orbis.engine.deployer_base import APP_PREFIX, DeployerBase, stamp
from orbis.model.hostnames import given_name
from orbis.model.infrastructure import Compute, ContainerApp, Template
from orbis.model.states import NodeState
from orbis.overlay.rights import node_rights
from orbis.placement.ranking import Candidate, Ranking, rank
from orbis.placement.sites import Site
from orbis.providers.base import Machine, NodeSpec, Provider, ProviderError
from orbis.providers.cloudinit import user_data
from orbis.store.schema import InfrastructureRow, NodeRow

log = logging.getLogger(__name__)


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


def app_sites(app: ContainerApp, sites: list[Site]) -> list[Site]:
    """The sites a container app may run on: Kubernetes ones (the one its placement names)."""
    return [s for s in sites if s.type.lower() == "kubernetes"
            and (not app.cloud_id or s.id == app.cloud_id)]  # fmt: skip


class Machines:
    """Launch, start, reboot, stop and remove single nodes, with `deployer`'s sites, keys and
    records (engine/deployer.py hands its node actions here)."""

    def __init__(self, deployer: DeployerBase) -> None:
        self.deployer = deployer
        self.store = deployer.store

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
            *(asyncio.to_thread(self.deployer.sites.info, s) for s in sites)
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
            self.deployer.fail_node(row, NodeState.FAILED, f"no node '{row.name}' in the template")
            return False
        sites = self.deployer.sites_of(infra.id)
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
            self.deployer.fail_node(row, NodeState.FAILED,
                                    f"no site can host {row.name}: {ranking.explain()}", lines)
            return False
        if row.site:  # a launch a crash interrupted: that site first (the machine may exist)
            candidates.sort(key=lambda s: s.id != row.site)
        failures: list[str] = []
        for number, site in enumerate(candidates):
            try:
                provider = self.deployer.sites.provider(site)
            except ProviderError as exc:
                failures.append(f"{site.id}: {exc}")
                continue
            failure = await self.deployer.prepare_site(infra.id, provider)
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
                machine = await self.deployer.retrying(partial(provider.launch, spec), row)
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
            self.deployer.sites.forget(site)  # its quotas changed
            lines += [f"Warning: {w}" for w in machine.warnings]
            self._record_machine(row, machine, NodeState.RUNNING, "launched", lines)
            launched()
            return await self._reach(infra, row, machine, provider)
        failures += [f"{site}: {why}" for site, why in ranking.excluded.items()]
        message = "launch failed: " + "; ".join(failures) if len(failures) > 1 else (
            f"launch failed: {failures[0].split(': ', 1)[-1]}" if failures else "launch failed")
        self.deployer.fail_node(row, NodeState.FAILED, message, lines)
        return False

    async def _deploy_app(self, infra: InfrastructureRow, row: NodeRow, app: ContainerApp) -> bool:
        """A container application (IM: one system per app) on a Kubernetes site: nothing to
        reach or configure, it is done once the cluster runs it."""
        clusters = app_sites(app, self.deployer.sites_of(infra.id))
        if not clusters:
            where = f"the site '{app.cloud_id}'" if app.cloud_id else "a site"
            self.deployer.fail_node(row, NodeState.FAILED, f"container app {app.name} needs "
                                    f"{where} of type Kubernetes in the auth data")  # fmt: skip
            return False
        site = clusters[0]
        self.store.update_node(infra.id, row.vm_id, site=site.id)
        try:
            provider = self.deployer.sites.provider(site)
            apply = getattr(provider, "apply_app", None)
            if apply is None:
                raise ProviderError(f"{site.id} cannot run container apps")
            endpoints = await self.deployer.retrying(
                partial(apply, infra.id, app, app.storage), row)
        except ProviderError as exc:
            self.deployer.fail_node(row, NodeState.FAILED,
                                    f"deploying app {app.name} failed: {exc}")
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
            provider = self.deployer.provider_of(row)
            await self.deployer.retrying(lambda: provider.stop(row.provider_id or ""), row)
        except ProviderError as exc:
            self.deployer.node_log(row, f"Error: stop failed: {exc}")
            return False
        self.store.update_node(infra.id, row.vm_id, state=NodeState.STOPPED, message="stopped")
        self.deployer.node_log(row, "Stopped")
        return True

    async def destroy_node(self, infra: InfrastructureRow, row: NodeRow) -> bool:
        """Remove the node's machine, also one a crashed launch left unrecorded."""

        def remove() -> None:
            provider = self.deployer.provider_of(row)
            if (row.provider_id or "").startswith(APP_PREFIX):
                getattr(provider, "remove_app")(infra.id, row.name)  # noqa: B009
                return
            ids = {row.provider_id} if row.provider_id else set()
            ids |= {m.provider_id for m in provider.list_owned()
                    if m.infrastructure_id == infra.id and m.vm_id == row.vm_id}  # fmt: skip
            for provider_id in ids:
                provider.destroy(provider_id)

        try:
            await self.deployer.retrying(remove, row)
        except ProviderError as exc:
            self.deployer.node_log(row, f"Error: removal failed: {exc}")
            return False
        self.store.update_node(infra.id, row.vm_id, state=NodeState.OFF, deleted=True,
                               message="removed")  # fmt: skip
        self.deployer.node_log(row, "Removed")
        live = [n for n in self.store.nodes(infra.id) if not n.deleted]
        try:
            await self.deployer.overlay.revoke(infra, row, live)
        except (OSError, asyncssh.Error) as exc:
            self.deployer.node_log(row, f"Warning: overlay: revocation not sent: {exc}")
        return True

    async def _power(self, infra: InfrastructureRow, row: NodeRow, action: str,
                     started: Callable[[], None] = lambda: None) -> bool:  # fmt: skip
        provider_id = row.provider_id or ""
        try:
            if provider_id.startswith(APP_PREFIX):
                raise ProviderError(f"a container app cannot {action}")
            provider = self.deployer.provider_of(row)
            call = provider.start if action == "start" else provider.reboot
            await self.deployer.retrying(lambda: call(provider_id), row)
            machine = await self.deployer.retrying(lambda: provider.inspect(provider_id), row)
        except ProviderError as exc:
            self.deployer.node_log(row, f"Error: {action} failed: {exc}")
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
            self.deployer.fail_node(row, NodeState.UNCONFIGURED, "the node has no address to reach")
            return False
        jump = None
        if not machine.public_ip and not provider.private_reachable:
            jump = await self._jump_host(infra.id, row, provider.ssh_timeout)
            if jump is None:
                self.deployer.fail_node(row, NodeState.UNCONFIGURED, "the node has no public "
                                        "address and no node of its site has one to reach it "
                                        "through")  # fmt: skip
                return False
            self.store.update_node(infra.id, row.vm_id, jump=jump)
        keep = (self.deployer.kept.keeper((infra.id, row.vm_id), (address, machine.ssh_port,
                                                                  machine.ssh_user, jump))
                if row.needs_config else None)  # fmt: skip
        try:
            seconds = await wait_ssh(address, user=machine.ssh_user, port=machine.ssh_port,
                                     private_key=self.deployer.private_key(infra), jump=jump,
                                     timeout=provider.ssh_timeout, keep=keep)  # fmt: skip
        except SSHNotReady as exc:
            self.deployer.fail_node(row, NodeState.UNCONFIGURED, str(exc))
            return False
        via = f" through {jump}" if jump else ""
        self.deployer.node_log(row, f"SSH ready at {address}{via} after {seconds:.2f} s")
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
            owner_mark=self.deployer.marks.mark(infra.owner_key),
            net_rights=node_rights(template, compute.name),
        )

