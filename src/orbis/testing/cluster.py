"""Several `orbis server` processes on one database, for high-availability tests and bench/ha.py."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from orbis.providers.base import LABEL_INFRASTRUCTURE, LABEL_VM_ID
from orbis.testing.server import RunningServer

T = TypeVar("T")


@contextmanager
def servers(engine_url: str | None, db_url: str, root: Path, count: int = 2,
            env: dict[str, str] | None = None) -> Iterator[list[RunningServer]]:  # fmt: skip
    """`count` servers, each with its own ORBIS_HOME, on one database and one secret key;
    afterwards what they hold is destroyed and they are stopped."""
    shared = {"ORBIS_DB_URL": db_url, "ORBIS_SECRET_KEY": secrets.token_urlsafe(32),
              **(env or {})}  # fmt: skip
    running = []
    for n in range(count):
        home = root / f"server-{n}"
        home.mkdir(parents=True)
        running.append(RunningServer(home, engine_url, "tester", shared))
    try:
        for server in running:
            server.start()
        yield running
    finally:
        alive = [s for s in running if s.proc is not None and s.proc.poll() is None]
        if alive:
            alive[0].destroy_all()
        for server in running:
            server.stop()


def wait_for(predicate: Callable[[], T | None], timeout: float = 180,
             interval: float = 0.2) -> T:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s")


def settled(client: httpx.Client, infra_id: str) -> dict[str, Any] | None:
    """The infrastructure's detail once every requested change is brought about."""
    answer = client.get(f"/orbis/infrastructures/{infra_id}")
    if answer.status_code != 200:
        return None
    detail: dict[str, Any] = answer.json()
    done = detail["reconciled"] >= detail["generation"] and detail["phase"] == "done"
    return detail if done else None


def vm_ids_of_containers(engine: Any, infra_id: str) -> list[int]:
    """VM ids of the local back-end's containers of an infrastructure (docker.DockerClient)."""
    found = engine.api.containers(all=True, filters={"label": f"{LABEL_INFRASTRUCTURE}={infra_id}"})
    return sorted(int(c["Labels"][LABEL_VM_ID]) for c in found)
