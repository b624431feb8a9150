"""What the deployer's parts share: the server's back-end and the sites' providers, the
infrastructure's key, runners and kept SSH connections, and the writing of progress to the store.

`Deployer` (engine/deployer.py) is this plus the entry points; its collaborators `Machines`
(engine/machines.py) and `Configuration` (engine/configuration.py) are given it as theirs.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from orbis.configure import workfiles
from orbis.configure.ansible import WarmPlaybook
from orbis.configure.ssh import KeptConnections, run_command
from orbis.model.states import NodeState
from orbis.overlay.setup import OverlaySetup
from orbis.ownership import OwnerMarks
from orbis.paths import id_folder, private_folder
from orbis.placement.sites import Site, SiteRegistry
from orbis.providers.base import Provider, ProviderError, Transient
from orbis.redact import redact
from orbis.runner.pool import RunnerPool
from orbis.store.repository import Store
from orbis.store.schema import InfrastructureRow, NodeRow

T = TypeVar("T")
RETRIES = 3  # transient provider errors: tries after the first
APP_PREFIX = "app:"  # provider id of a container app's row (it is no machine)
BACKOFF = 0.5  # seconds before the first retry; doubles each time

CloudLines = Callable[[str], list[dict[str, str]]]


def stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


class DeployerBase:
    """What a `Deployer` and its parts share. `provider` is the server's own back-end; nodes
    go to the sites of the infrastructure's cloud lines (`clouds`, by infrastructure id)
    through `sites`, or to `provider` when none."""

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
        self.warm: dict[str, WarmPlaybook] = {}
        # the private network across sites; the service gives it its sealer (configure_access)
        self.overlay = OverlaySetup(store, self.on_node, self.node_log)
        # the SSH wait's connection to a new node, kept for naming it (Configuration._name_nodes)
        self.kept = KeptConnections()

    def workdir(self, infra_id: str) -> Path:
        """The infrastructure's folder under the work dir; UnsafeId for an id that is not of
        the server's shape or would lead outside it (paths.id_folder)."""
        return id_folder(self.work_dir, infra_id)

    def runner_dir(self, infra_id: str) -> Path:
        """The part of the work folder the infrastructure's runner sees (and may write)."""
        return self.workdir(infra_id) / "runner"

    def provider_of(self, row: NodeRow) -> Provider:
        """The provider of the site a node was placed on (no credentials read for the
        server's own back-end: configure asks this for every node)."""
        if not row.site:
            return self.provider
        return self.sites.provider_by_id(row.site, self.clouds(row.infrastructure_id))

    def sites_of(self, infra_id: str) -> list[Site]:
        return self.sites.sites_for(self.clouds(infra_id))

    def discard_warm(self, infra_id: str) -> None:
        warm = self.warm.pop(infra_id, None)
        if warm is not None:
            warm.discard()

    async def prepare_site(self, infra_id: str, provider: Provider) -> str | None:
        key = (infra_id, provider.site)
        if key in self._prepared:
            return None
        if provider is not self.provider:  # before the call: what it makes there, destroy cleans
            self.store.add_site_use(infra_id, provider.site)
        try:
            await self.retrying(lambda: provider.prepare(infra_id))
        except ProviderError as exc:
            return str(exc)
        self._prepared.add(key)
        return None

    async def retrying(self, call: Callable[[], T], row: NodeRow | None = None) -> T:
        """Run a blocking provider call in a thread; retry Transient errors with backoff."""
        for attempt in range(RETRIES + 1):
            try:
                return await asyncio.to_thread(call)
            except Transient as exc:
                if attempt == RETRIES:
                    raise
                delay = BACKOFF * 2**attempt * (0.5 + random.random())  # jitter spreads retries
                if row is not None:
                    self.node_log(row, f"Transient error ({exc}); retrying in {delay:.1f} s")
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def on_node(self, infra: InfrastructureRow, row: NodeRow, command: str,
                      **options: Any) -> tuple[int, str]:  # fmt: skip
        """One shell command on a node, logged in as Ansible does (key, port, jump host)."""
        return await run_command(
            row.public_ip or row.private_ip or "", command, user=row.ssh_user,
            private_key=self.private_key(infra), port=row.ssh_port or 22, jump=row.jump, **options,
        )  # fmt: skip

    # -- records (every transition is written to the store as it happens) ------------------
    def log(self, infra_id: str, text: str) -> None:
        """Add a line to the infrastructure's log (its contmsg)."""
        self.store.append_log(infra_id, f"{stamp()} {redact(text)}\n")

    def fail(self, row: NodeRow, message: str) -> None:
        """Mark a node failed, with the reason in its record and log."""
        self.fail_node(row, NodeState.FAILED, message)

    def write_key(self, infra: InfrastructureRow) -> Path:
        private_folder(self.work_dir)  # 0700 from the top: keys of all infrastructures below
        # the folder is shared with what runs user recipes: never write through a planted link
        folder = workfiles.make_folder(private_folder(self.workdir(infra.id)))
        return workfiles.write_file(folder, "id_ed25519", self.private_key(infra), 0o600)

    def fail_node(
        self, row: NodeRow, state: NodeState, message: str, lines: list[str] | None = None
    ) -> None:
        message = redact(message)  # becomes the node's error, its contmsg and an event
        lines = [redact(line) for line in [*(lines or []), f"Error: {message}"]]
        self.store.update_node(
            row.infrastructure_id, row.vm_id, state=state, error=message, message=message,
            log_lines=[f"{stamp()} {line}" for line in lines],
        )  # fmt: skip

    def node_log(self, row: NodeRow, text: str) -> None:
        self.store.append_node_log(row.infrastructure_id, row.vm_id,
                                   f"{stamp()} {redact(text)}\n")  # fmt: skip

