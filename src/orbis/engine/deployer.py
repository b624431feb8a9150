"""Bringing an infrastructure up (launch → SSH → Ansible levels) and tearing it down.

Every transition is written to the store as it happens, so the API shows live progress and the
events table keeps the timeline. A node that fails stops only itself: its siblings go on.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from orbis.configure.ansible import (
    HostResult,
    PlaybookError,
    StepRun,
    Target,
    load_plays,
    run_level,
)
from orbis.configure.ssh import SSHNotReady, wait_ssh
from orbis.engine.attributes import attribute_resolver
from orbis.engine.plan import PlannedStep, group_by_level, plan_configuration
from orbis.lang.functions import evaluate
from orbis.model.infrastructure import Compute, Operation, Template
from orbis.model.states import NodeState
from orbis.providers.base import NodeSpec, Provider, ProviderError
from orbis.store.repository import Store
from orbis.store.schema import InfrastructureRow, NodeRow

log = logging.getLogger(__name__)


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
    if "://" in image:
        return None, f"image '{image}' belongs to another cloud: using the local node image"
    return image, None  # IM reads a bare name as a container image


class Deployer:
    def __init__(self, store: Store, provider: Provider, work_dir: Path) -> None:
        self.store = store
        self.provider = provider
        self.work_dir = work_dir

    def workdir(self, infra_id: str) -> Path:
        return self.work_dir / infra_id

    # -- deploy ----------------------------------------------------------------------------
    async def deploy(self, infra_id: str, template: Template) -> None:
        infra = self.store.get(infra_id)
        assert infra is not None
        self._log(
            infra_id, f"Deploying infrastructure {infra_id} on the {self.provider.name} back-end"
        )
        for warning in template.warnings:
            self._log(infra_id, f"Warning: {warning}")
        self.store.set_phase(infra_id, "launching")
        try:
            await asyncio.to_thread(self.provider.prepare, infra_id)
        except ProviderError as exc:
            for row in self.store.nodes(infra_id):
                self._fail_node(
                    row, NodeState.FAILED, f"could not prepare the infrastructure: {exc}"
                )
            self.store.set_phase(infra_id, "done", str(exc))
            return
        key_file = self._write_key(infra)
        rows = self.store.nodes(infra_id)
        ready = await asyncio.gather(*(self._bring_up(infra, template, row) for row in rows))
        up = [row for row, ok in zip(rows, ready, strict=True) if ok]
        self.store.set_phase(infra_id, "configuring")
        await self._configure(infra, template, up, key_file)
        self.store.set_phase(infra_id, "done")
        self._log(infra_id, "Deployment finished")

    async def _bring_up(self, infra: InfrastructureRow, template: Template, row: NodeRow) -> bool:
        """Launch one node and wait for its SSH; False if it failed (already recorded)."""
        compute = template.computes[row.name]
        image, warning = (
            local_image(compute.image) if self.provider.name == "local" else (compute.image, None)
        )
        if warning:
            self._node_log(row, f"Warning: {warning}")
        spec = self._spec(infra, row, compute, image)
        self._node_log(row, f"Launching {row.name} (VM {row.vm_id})")
        try:
            machine = await asyncio.to_thread(self.provider.launch, spec)
        except ProviderError as exc:
            self._fail_node(row, NodeState.FAILED, f"launch failed: {exc}")
            return False
        for w in machine.warnings:
            self._node_log(row, f"Warning: {w}")
        self.store.update_node(
            infra.id,
            row.vm_id,
            state=NodeState.RUNNING,
            provider_id=machine.provider_id,
            private_ip=machine.private_ip,
            public_ip=machine.public_ip,
            ssh_user=machine.ssh_user,
            message="launched",
        )
        address = machine.public_ip or machine.private_ip
        if not address:
            self._fail_node(row, NodeState.UNCONFIGURED, "the node has no address to reach")
            return False
        try:
            seconds = await wait_ssh(
                address,
                user=machine.ssh_user,
                port=machine.ssh_port,
                private_key=infra.ssh_private_key,
            )
        except SSHNotReady as exc:
            self._fail_node(row, NodeState.UNCONFIGURED, str(exc))
            return False
        self._node_log(row, f"SSH ready at {address} after {seconds:.2f} s")
        return True

    def _spec(
        self, infra: InfrastructureRow, row: NodeRow, compute: Compute, image: str | None
    ) -> NodeSpec:
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
            hostname=f"{row.name}-{row.vm_id}".replace("_", "-").lower(),
        )

    # -- configure -------------------------------------------------------------------------
    async def _configure(
        self, infra: InfrastructureRow, template: Template, up: list[NodeRow], key_file: Path
    ) -> None:
        healthy = {row.vm_id for row in up}
        all_nodes = self.store.nodes(infra.id)
        levels = group_by_level(plan_configuration(template))
        for number, steps in enumerate(levels, start=1):
            rows = [r for r in self.store.nodes(infra.id) if r.vm_id in healthy]
            if not rows:
                break
            await self._run_level(
                infra, template, number, steps, rows, all_nodes, key_file, healthy
            )
        for row in self.store.nodes(infra.id):
            if row.vm_id in healthy:
                self.store.update_node(
                    infra.id, row.vm_id, state=NodeState.CONFIGURED, message="configured"
                )

    async def _run_level(
        self,
        infra: InfrastructureRow,
        template: Template,
        number: int,
        steps: list[PlannedStep],
        rows: list[NodeRow],
        all_nodes: list[NodeRow],
        key_file: Path,
        healthy: set[int],
    ) -> None:
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
                plays = self._plays(template, step, all_nodes)
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
            targets = [
                Target(
                    host=host_of[r.vm_id],
                    address=r.public_ip or r.private_ip or "",
                    user=r.ssh_user,
                    groups=(r.name,),
                    variables={
                        "IM_NODE_PRIVATE_IP": r.private_ip,
                        "IM_NODE_PUBLIC_IP": r.public_ip,
                        "IM_NODE_VMID": r.vm_id,
                        "IM_INFRASTRUCTURE_ID": infra.id,
                    },
                )
                for r in rows
            ]
            ran, output = await run_level(
                self.workdir(infra.id), targets, runs, key_file, label=f"level-{number}"
            )
            self._log(infra.id, f"Ansible output of level {number}:\n{output.rstrip()}")
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
                self._fail_node(row, NodeState.UNCONFIGURED, f"step {step_name} failed")

    def _plays(
        self, template: Template, step: PlannedStep, nodes: list[NodeRow]
    ) -> list[dict[str, Any]]:
        """The plays of a step's operations, with each operation's inputs as variables."""
        resolve = attribute_resolver(template, nodes, self_node=step.node)
        plays: list[dict[str, Any]] = []
        for op in step.operations:
            text, origin = self._playbook_text(op)
            if text is None:
                continue
            variables = evaluate(op.inputs, resolve) if op.inputs else {}
            for play in load_plays(text, origin):
                plays.append({**play, "vars": {**(play.get("vars") or {}), **variables}})
        return plays

    def _playbook_text(self, op: Operation) -> tuple[str | None, str]:
        if op.inline is not None:
            return op.inline, f"inline {op.name}"
        impl = op.implementation or ""
        if "://" in impl:
            if op.inherited:
                return None, impl  # a type's default recipe; fetching URLs comes with artifacts
            raise PlaybookError(f"artifact {impl} is a URL; Orbis cannot fetch it yet")
        # Never read files of the server's own disk on behalf of a template.
        raise PlaybookError(
            f"playbook '{Path(impl).name}' is a file on the client's machine; "
            "send it inline (`orbis deploy` does) or by URL"
        )

    # -- destroy ---------------------------------------------------------------------------
    async def destroy(self, infra_id: str) -> None:
        self.store.set_phase(infra_id, "deleting")
        self._log(infra_id, "Destroying infrastructure")
        await asyncio.to_thread(self.provider.cleanup, infra_id)
        for row in self.store.nodes(infra_id):
            self.store.update_node(
                infra_id, row.vm_id, state=NodeState.OFF, deleted=True, message="destroyed"
            )
        shutil.rmtree(self.workdir(infra_id), ignore_errors=True)
        self.store.set_phase(infra_id, "deleted")

    # -- helpers ---------------------------------------------------------------------------
    def _write_key(self, infra: InfrastructureRow) -> Path:
        folder = self.workdir(infra.id)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_file = folder / "id_ed25519"
        key_file.touch(mode=0o600)
        key_file.write_text(infra.ssh_private_key)
        return key_file

    def _fail_node(self, row: NodeRow, state: NodeState, message: str) -> None:
        self.store.update_node(
            row.infrastructure_id, row.vm_id, state=state, error=message, message=message
        )
        self._node_log(row, f"Error: {message}")

    def _log(self, infra_id: str, text: str) -> None:
        self.store.append_log(infra_id, f"{stamp()} {text}\n")

    def _node_log(self, row: NodeRow, text: str) -> None:
        self.store.append_node_log(row.infrastructure_id, row.vm_id, f"{stamp()} {text}\n")
