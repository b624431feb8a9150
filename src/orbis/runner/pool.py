"""Which runner an infrastructure's recipes run in, started once per configuration.

On a server with a container engine (the local back-end) it is a container (container.py);
without one, the infrastructure's own front-end node (frontend.py, as IM's contextualization
agent), and with no such node the deploy fails with RunnerUnavailable: never a silent
fallback to the host. The
host runs recipes only when the operator opted in (ORBIS_UNSAFE_RECIPES_ON_HOST=1), which is
logged as a warning when the pool is made (at the service's start).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from pathlib import Path

import docker.errors

from orbis import config
from orbis.configure.ansible import CALLBACK_DIR, ROLES_DIR
from orbis.providers.base import Provider, ProviderError
from orbis.runner.base import Runner, RunnerError, RunnerUnavailable
from orbis.runner.container import ContainerRunner
from orbis.runner.frontend import FrontendRunner, FrontLogin
from orbis.runner.host import HostRunner
from orbis.runner.options import Limits, container_options

log = logging.getLogger(__name__)
MITOGEN_LABEL = "orbis.runner.mitogen"

Frontend = tuple[FrontLogin, str]  # the front-end node's login and the infrastructure's key
UNSAFE_WARNING = (
    "ORBIS_UNSAFE_RECIPES_ON_HOST=1: users' Ansible recipes run ON THIS HOST as this service's "
    "user, with access to its files; use this only on a single-user install (docs/runner.md)"
)
NO_HOST = ("recipes never run on the service host; a single-user install may allow that with "
           "ORBIS_UNSAFE_RECIPES_ON_HOST=1 (docs/runner.md)")  # fmt: skip


class RunnerPool:
    """Runners by infrastructure. `provider` is the server's own back-end: its container
    engine (if it has one) runs the runners, on each infrastructure's network."""

    def __init__(self, provider: Provider, settings: config.Settings | None = None) -> None:
        self.provider = provider
        self.settings = settings or config.load()
        self._runners: dict[str, Runner] = {}
        self._starting: dict[str, asyncio.Task[Runner]] = {}
        if self.settings.unsafe_recipes_on_host:
            log.warning(UNSAFE_WARNING)

    @property
    def uses_engine(self) -> bool:
        return not self.settings.unsafe_recipes_on_host and self.provider.name == "local"

    def warm(self, infra_id: str, workspace: Path, key_file: Path) -> None:
        """Start the runner in the background (while the nodes launch); `get` waits for it."""
        if infra_id not in self._runners and infra_id not in self._starting:
            task = asyncio.create_task(self._start(infra_id, workspace, key_file))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # seen by get
            self._starting[infra_id] = task

    async def get(self, infra_id: str, workspace: Path, key_file: Path,
                  frontend: Frontend | None = None) -> Runner:  # fmt: skip
        """The infrastructure's runner, started if need be; RunnerUnavailable if there can be
        none, RunnerError if the engine failed to start it. Without an engine, `frontend`
        (the infrastructure's front-end node and its key) is where the plays run."""
        runner = self._runners.get(infra_id)
        if runner is not None and (not isinstance(runner, ContainerRunner)
                                   or await asyncio.to_thread(runner.alive)):  # fmt: skip
            return runner
        self._runners.pop(infra_id, None)
        task = self._starting.get(infra_id)
        if task is None or task.done() and (task.cancelled() or task.exception()):
            task = asyncio.create_task(self._start(infra_id, workspace, key_file, frontend))
            self._starting[infra_id] = task
        try:
            runner = await asyncio.shield(task)
        finally:
            if task.done():
                self._starting.pop(infra_id, None)
        self._runners[infra_id] = runner
        return runner

    async def release(self, infra_id: str, *, remove: bool = True) -> None:
        """Let go of the infrastructure's runner and remove it (destroyed). `remove=False`
        leaves a runner container to the back-end's cleanup, which removes it together with
        the nodes (it carries the infrastructure's label) instead of before them."""
        task = self._starting.pop(infra_id, None)
        runner = self._runners.pop(infra_id, None)
        await _close(task, runner, remove)

    async def close(self) -> None:
        for infra_id in [*self._runners, *self._starting]:
            await self.release(infra_id)

    async def _start(self, infra_id: str, workspace: Path, key_file: Path,
                     frontend: Frontend | None = None) -> Runner:  # fmt: skip
        workspace.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.settings.unsafe_recipes_on_host:
            return HostRunner(workspace, key_file)
        if self.provider.name != "local":
            if frontend is not None:  # IM's way: on the infrastructure's own master node
                login, private_key = frontend
                return FrontendRunner(workspace, login, private_key, infra_id)
            raise RunnerUnavailable(
                f"no container engine to run recipes in (the server's back-end is "
                f"'{self.provider.name}') and no front-end node with a public address to run "
                f"them on; {NO_HOST}"
            )
        runner = await asyncio.to_thread(self._container, infra_id, workspace, key_file)
        return runner

    def _container(self, infra_id: str, workspace: Path, key_file: Path) -> ContainerRunner:
        from orbis.providers.local import LocalProvider, network_name

        provider = self.provider
        assert isinstance(provider, LocalProvider)
        image = self.settings.runner_image
        try:
            client = provider.client
            provider.prepare(infra_id)  # the infrastructure's network (it may have no node here)
        except ProviderError as exc:
            raise RunnerUnavailable(f"no container engine for the recipe runner ({exc}); "
                                    f"{NO_HOST}") from None  # fmt: skip
        try:
            labels = client.images.get(image).labels or {}
        except docker.errors.ImageNotFound:
            raise RunnerUnavailable(f"runner image {image} not found: build it with "
                                    "images/runner/build.sh (make image)") from None  # fmt: skip
        except docker.errors.DockerException as exc:
            raise RunnerError(f"runner image {image}: {exc}") from None
        s = self.settings
        options = container_options(
            infrastructure_id=infra_id, installation=provider.installation, image=image,
            network=network_name(infra_id), workspace=workspace, key_file=key_file,
            callback_dir=CALLBACK_DIR, roles_dir=ROLES_DIR,
            limits=Limits(cpus=s.runner_cpus, memory_mb=s.runner_memory_mb, pids=s.runner_pids),
        )  # fmt: skip
        runner = ContainerRunner(client, options, workspace)
        # images/runner/build.sh labels where Mitogen's strategy plugins are (none: older image)
        runner.mitogen = labels.get(MITOGEN_LABEL) or None
        runner.start()
        return runner


async def _close(task: asyncio.Task[Runner] | None, runner: Runner | None, remove: bool) -> None:
    """Close a runner (once the start under way, if any, has ended)."""
    runners = [runner] if runner is not None else []
    if task is not None:
        with suppress(Exception, asyncio.CancelledError):
            started = await task
            if started is not runner:
                runners.append(started)
    for one in runners:
        if remove or not isinstance(one, ContainerRunner):
            await one.close()
        else:
            one.closed = True  # its container goes with the infrastructure's (cleanup)
