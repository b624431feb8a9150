"""Configuring an infrastructure's nodes once they answer SSH: host names and /etc/hosts, the
overlay and its cloud routes, Galaxy requirements, then the plan's Ansible levels in the
infrastructure's runner; and the disks added to a running node.

A node whose step fails ends unconfigured; the others go on to the next level.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import asyncssh

from orbis.configure import galaxy, hosts, oscar_local, storage
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
from orbis.engine import naming
from orbis.engine.attributes import attribute_resolver
from orbis.engine.deployer_base import APP_PREFIX, DeployerBase
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
from orbis.model.infrastructure import Operation, Template
from orbis.model.states import NodeState
from orbis.overlay import state as overlay_state
from orbis.providers.base import ProviderError
from orbis.runner.base import Runner, RunnerError
from orbis.runner.frontend import FrontendRunner, FrontLogin
from orbis.runner.pool import Frontend
from orbis.store.schema import InfrastructureRow, NodeRow

# a step's run on one inventory host: (step name, host)
StepHost = tuple[str, str]

# nodes that lend their inventory entry to a level they are not configured in
CONFIGURED_OR_UP = {NodeState.CONFIGURED, NodeState.RUNNING, NodeState.UNCONFIGURED}


def level_label(number: int) -> str:
    """The file names of a level's run in the runner folder (never reused)."""
    return f"level-{number}-{random.randrange(1 << 32):08x}"


class Configuration:
    """Configure an infrastructure's nodes in its runner, with `deployer`'s sites, keys and
    records (engine/deployer.py hands configure and prepare_disks here)."""

    def __init__(self, deployer: DeployerBase) -> None:
        self.deployer = deployer
        self.store = deployer.store

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
        if all(self.deployer.provider_of(r).simulated for r in targets):
            await self._simulate_configuration(infra, template, targets)
            return
        key_file = self.deployer.write_key(infra)
        try:
            runner = await self.deployer.runners.get(
                infra.id, self.deployer.runner_dir(infra.id), key_file, self._frontend(infra))
        except RunnerError as exc:
            self.deployer.log(infra.id, f"Error: configuration cannot run: {exc}")
            self.store.update_nodes(infra.id, [r.vm_id for r in targets], needs_config=False)
            for row in targets:
                self.deployer.fail_node(row, NodeState.UNCONFIGURED,
                                        f"configuration cannot run: {exc}")
            return
        try:
            await self._configure_in(runner, infra, template, targets)
        finally:
            self.deployer.discard_warm(infra.id)  # one started for a level that did not run
            # removed before the infrastructure is done
            await self.deployer.runners.release(infra.id)

    def _frontend(self, infra: InfrastructureRow) -> Frontend | None:
        """Where plays run when the server has no container engine: the infrastructure's
        first node with a public address (IM's master VM), with the infrastructure's key."""
        if self.deployer.runners.uses_engine:
            return None
        nodes = [n for n in self.store.nodes(infra.id) if not n.deleted and n.public_ip
                 and n.adoption != "detached" and n.provider_id]  # fmt: skip
        if not nodes:
            return None
        front = min(nodes, key=lambda n: n.vm_id)  # IM's master: the first VM
        login = FrontLogin(front.public_ip or "", front.ssh_port or 22, front.ssh_user, front.site)
        return login, self.deployer.private_key(infra)


    async def _configure_in(self, runner: Runner, infra: InfrastructureRow, template: Template,
                            targets: list[NodeRow]) -> None:  # fmt: skip
        self.store.interrupt_steps(infra.id)  # steps a crashed run left "running"
        healthy = {row.vm_id for row in targets}
        await self._install_galaxy(infra, template, targets, runner)
        # a detached node (another owner's, named in imported data) lends nothing either
        all_nodes = [n for n in self.store.nodes(infra.id) if n.adoption != "detached"]
        await self._name_nodes(infra, template, targets, all_nodes)
        if template.overlay is not None:  # before any recipe: they may use its addresses
            for vm_id in await self.deployer.overlay.apply(infra, template, targets, all_nodes):
                healthy.discard(vm_id)
            healthy -= await self._route_sites(infra, template, all_nodes)
        # IM_NODE_CLOUD_TYPE / _SERVER by site, read once (credentials are unsealed for it)
        clouds = {s.id: (s.type, s.host) for s in self.deployer.sites_of(infra.id) if not s.local}
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
                if routes_on_cloud(self.deployer.provider_of(row)):
                    routes.append((row, cidrs))
            except ProviderError as exc:  # its site's credentials are gone
                self.deployer.node_log(
                    row, f"Error: overlay: its cloud cannot be asked to route: {exc}")
                failed.add(row.vm_id)

        async def route(row: NodeRow, cidrs: list[str]) -> tuple[str, ...]:
            provider = self.deployer.provider_of(row)
            drop = stale_routes(known, row, cidrs)  # a site gone: its routes go too
            return await self.deployer.retrying(
                lambda: provider.route_through(row.provider_id or "", cidrs, drop), row)

        failed |= await route_sites(routes, route, self.deployer.node_log)
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
                status, output = await self.deployer.on_node(
                    infra, row, command, kept=self.deployer.kept.take((infra.id, row.vm_id), where))
            except (OSError, asyncssh.Error) as exc:
                status, output = 255, str(exc) or type(exc).__name__
            if status != 0:
                self.deployer.node_log(row, f"Warning: could not set the host name and /etc/hosts: "
                                            f"{output.strip()[-300:]}")  # fmt: skip

        await asyncio.gather(*(name(r) for r in targets if r.vm_id in names))

    async def prepare_disks(self, infra: InfrastructureRow, row: NodeRow,
                            disks: list[dict[str, Any]]) -> str:  # fmt: skip
        """Format and mount disks added to a running node (alter): disks.py over one SSH
        command. Returns what was done; raises ProviderError with the node's answer."""
        command = storage.shell_command(disks, sudo=row.ssh_user != "root")
        try:
            status, output = await self.deployer.on_node(
                infra, row, command, timeout=600, stdin=storage.SCRIPT.read_text())
        except (OSError, asyncssh.Error) as exc:
            raise ProviderError(f"node unreachable: {exc or type(exc).__name__}") from exc
        if status != 0:
            raise ProviderError(output.strip()[-500:] or f"exit status {status}")
        try:
            done = json.loads(output.strip().splitlines()[-1])["disks"]
        except (ValueError, KeyError, IndexError):
            return output.strip()
        return "; ".join(f"disk {d['index']} ({d['device']}): {d['action']}" for d in done)

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
        self.deployer.log(infra.id, "Installing Ansible Galaxy requirements: "
                          + ", ".join([*roles, *collections]))  # fmt: skip
        try:
            await galaxy.install(runner, roles, collections)
        except (galaxy.GalaxyError, RunnerError) as exc:
            self.deployer.log(infra.id, f"Warning: {exc}")
            for row in targets:
                if row.name in needing:
                    self.deployer.node_log(row, f"Warning: {exc}")

    async def _simulate_configuration(
        self, infra: InfrastructureRow, template: Template, targets: list[NodeRow]
    ) -> None:
        """The simulated cloud's stand-in for Ansible: each level takes `config_seconds`."""
        for number, steps in enumerate(group_by_level(plan_configuration(template)), start=1):
            self.deployer.log(infra.id, f"Configuration level {number} (simulated): "
                              + ", ".join(s.name for s in steps))  # fmt: skip
            await asyncio.sleep(self.deployer.provider.config_seconds)
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
        runs, step_ids, results = await self._level_steps(infra, template, number, steps, rows,
                                                          all_nodes, host_of)  # fmt: skip
        self.deployer.log(
            infra.id, f"Configuration level {number}: " + ", ".join(sorted({s.name for s in steps}))
        )
        for key, step_id in step_ids.items():
            if key not in results:
                self.store.update_step(step_id, "running")
        if runs:
            targets = self._targets(template, rows, all_nodes, runner, host_of, infra.id, clouds)
            results.update(await self._run_plays(infra, runner, number, targets, runs, more))
        self._record_results(infra, rows, host_of, step_ids, results, healthy)

    async def _level_steps(
        self, infra: InfrastructureRow, template: Template, number: int,
        steps: list[PlannedStep], rows: list[NodeRow], all_nodes: list[NodeRow],
        host_of: dict[int, str],
    ) -> tuple[list[StepRun], dict[StepHost, int], dict[StepHost, HostResult]]:  # fmt: skip
        """A level's steps on `rows`: the plays to run, each (step, host)'s step record, and
        the results already known (a step whose plays cannot be made fails; one with nothing
        to run succeeds)."""
        runs: list[StepRun] = []
        step_ids: dict[StepHost, int] = {}
        known: dict[StepHost, HostResult] = {}
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
                    known[(step.name, h)] = HostResult(ok=False, output=f"{exc}\n")
                continue
            if plays:
                runs.append(StepRun(step.name, hosts, plays))
            else:
                for h in hosts:
                    known[(step.name, h)] = HostResult(ok=True, output="(nothing to run)\n")
        return runs, step_ids, known

    def _targets(
        self, template: Template, rows: list[NodeRow], all_nodes: list[NodeRow], runner: Runner,
        host_of: dict[int, str], infra_id: str, clouds: dict[str, tuple[str, str]],
    ) -> list[Target]:  # fmt: skip
        """The level's inventory: its nodes, and the configured ones it lends addresses to."""
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
        return [
            Target(
                host=host_of.get(r.vm_id) or f"{r.name}_{r.vm_id}",
                address=(r.private_ip if r.vm_id in on_site else r.public_ip or r.private_ip)
                or "",
                user=r.ssh_user,
                port=r.ssh_port or 22,
                jump=None if r.vm_id in on_site else r.jump,
                on_this_host=self._on_this_host(r),
                groups=(r.name,),
                variables=naming.im_variables(
                    template, r, first, infra_id,
                    *clouds.get(r.site or "", ("Local", "localhost")),
                ),
            )
            for r in [*rows, *others]
        ]

    async def _run_plays(
        self, infra: InfrastructureRow, runner: Runner, number: int, targets: list[Target],
        runs: list[StepRun], more: bool,
    ) -> dict[StepHost, HostResult]:  # fmt: skip
        """Run the level's plays in the runner (with the ansible-playbook started for it while
        nodes launched, and one started for the next level if `more`); results by (step, host)."""
        warm = self.deployer.warm.pop(infra.id, None)
        if more and runner.shares_folder:
            self.deployer.warm[infra.id] = WarmPlaybook(runner, len(targets),
                                                        level_label(number + 1))  # fmt: skip
        try:
            ran, output = await run_level(runner, targets, runs, label=level_label(number),
                                          warm=warm)  # fmt: skip
        except (RunnerError, OSError) as exc:
            output = f"the runner failed: {exc}\n"
            ran = {(s.name, h): HostResult(ok=False, output=output) for s in runs
                   for h in s.hosts}  # fmt: skip
        self.deployer.log(infra.id, f"Ansible output of level {number} (in {runner.where}):\n"
                          f"{output.rstrip()}")  # fmt: skip
        return ran

    def _record_results(
        self, infra: InfrastructureRow, rows: list[NodeRow], host_of: dict[int, str],
        step_ids: dict[StepHost, int], results: dict[StepHost, HostResult],
        healthy: set[int],
    ) -> None:  # fmt: skip
        """Each (step, host)'s result into its step record and node log; a node with a failed
        step leaves `healthy` (no later level runs on it)."""
        vm_of = {h: vm for vm, h in host_of.items()}
        for (step_name, host), result in sorted(results.items()):
            vm_id = vm_of[host]
            status = "ok" if result.ok else "failed"
            self.store.update_step(step_ids[(step_name, host)], status, result.output)
            row = next(r for r in rows if r.vm_id == vm_id)
            self.deployer.node_log(row, f"Step {step_name}: {status}\n{result.output.rstrip()}")
            if not result.ok and vm_id in healthy:
                healthy.discard(vm_id)
                self.deployer.fail_node(row, NodeState.RUNNING, f"step {step_name} failed")

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
                        self.deployer.node_log(row, f"{step.node}: the local back-end runs "
                                               "the OSCAR stand-in here instead of OSCAR's "
                                               "Kubernetes install "
                                               "(docs/functions.md)")  # fmt: skip
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
                        self.deployer.node_log(
                            row, f"Warning: {step.node}.{op.name} skipped: {exc}")
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

    def _on_this_host(self, row: NodeRow) -> bool:
        """Whether a node is a container of the local back-end (reached over this host's
        bridges); False when its site cannot be asked (its credentials are gone)."""
        try:
            return self.deployer.provider_of(row).name == "local"
        except ProviderError:
            return False

    def _on_local(self, compute: str, nodes: list[NodeRow]) -> bool:
        """Whether the machines of `compute` are on the local back-end."""
        rows = [n for n in nodes if n.name == compute and not n.deleted]
        return bool(rows) and all(self.deployer.provider_of(n).name == "local" for n in rows)

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
