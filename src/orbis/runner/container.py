"""An infrastructure's runner as a container on the local engine: started (while the nodes
launch), used by `exec` once per level or Galaxy install, removed when configuration ends.

A command is cancelled or timed out by removing the whole container: that kills Ansible, its
forks and its SSH masters at once, whatever they do; the pool starts a fresh one when needed.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from orbis.runner.base import Runner, RunnerError, keep_tail
from orbis.runner.options import PATHS

log = logging.getLogger(__name__)


def _explain(err: Exception) -> str:
    if isinstance(err, docker.errors.APIError) and err.explanation:
        return str(err.explanation)
    return str(err) or type(err).__name__


class ContainerRunner(Runner):
    where = "the infrastructure's runner container"
    shares_folder = True

    def __init__(self, client: docker.DockerClient, options: dict[str, Any],
                 workspace: Path) -> None:  # fmt: skip
        self.client = client
        self.options = options
        self.workspace = workspace
        self.paths = PATHS
        self.name: str = options["name"]
        self.container_id: str | None = None
        self.closed = False

    # -- lifecycle (blocking: the pool calls these in a thread) ----------------------------
    def start(self) -> None:
        """Create and start the container; one left by an earlier life of the service (maybe
        still running that life's Ansible) is removed first."""
        self._remove_by_name()
        try:
            container = self.client.containers.create(**self.options)
        except docker.errors.APIError as err:
            if err.status_code != 409 and "already" not in _explain(err):
                raise RunnerError(f"runner {self.name}: cannot create: {_explain(err)}") from None
            self._remove_by_name()  # a parallel start won; ours is the one that counts
            container = self.client.containers.create(**self.options)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as err:
            raise RunnerError(f"runner {self.name}: cannot create: {_explain(err)}") from None
        try:
            container.start()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as err:
            with suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                container.remove(force=True)
            raise RunnerError(f"runner {self.name}: cannot start: {_explain(err)}") from None
        self.container_id = container.id

    def alive(self) -> bool:
        if self.closed or not self.container_id:
            return False
        try:
            state = self.client.api.inspect_container(self.container_id)["State"]
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return False
        return bool(state.get("Running"))

    def remove(self) -> None:
        self.closed = True
        if self.container_id:
            with suppress(docker.errors.NotFound):
                try:
                    self.client.api.remove_container(self.container_id, force=True, v=True)
                except (docker.errors.DockerException, requests.exceptions.RequestException) as err:
                    log.warning("runner %s: could not remove: %s", self.name, _explain(err))

    def _remove_by_name(self) -> None:
        with suppress(docker.errors.NotFound):
            self.client.api.remove_container(self.name, force=True, v=True)

    # -- commands ---------------------------------------------------------------------------
    async def run(self, argv: list[str], env: dict[str, str], *, timeout: float,
                  tag: str) -> tuple[int, str]:  # fmt: skip
        if self.closed or not self.container_id:
            raise RunnerError(f"runner {self.name} is not running")
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._exec, argv, env), timeout)
        except TimeoutError:
            await asyncio.to_thread(self.remove)
            return 124, f"{argv[0]} timed out after {timeout:.0f} s (runner removed)\n"
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.to_thread(self.remove))  # Ansible must not go on
            raise

    def _exec(self, argv: list[str], env: dict[str, str]) -> tuple[int, str]:
        api = self.client.api
        try:
            exec_id = api.exec_create(self.container_id, argv, environment=env,
                                      workdir=str(self.paths.workspace))["Id"]  # fmt: skip
            chunks: list[bytes] = []
            size = 0
            for chunk in api.exec_start(exec_id, stream=True):
                size = keep_tail(chunks, size, chunk)
            code = api.exec_inspect(exec_id).get("ExitCode")
        except (docker.errors.DockerException, requests.exceptions.RequestException) as err:
            if self.closed:
                return 137, "runner removed while the command ran\n"
            raise RunnerError(f"runner {self.name}: exec failed: {_explain(err)}") from None
        return (code if isinstance(code, int) else 255), b"".join(chunks).decode(errors="replace")

    async def close(self) -> None:
        await asyncio.to_thread(self.remove)
