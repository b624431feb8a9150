"""The whole app (API and dashboard) in a test client, on a cloud that holds no machines:
for tests of what the service answers, where no node is ever launched."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from orbis import config
from orbis.api.app import create_app
from orbis.providers.base import Machine, NodeSpec, Provider


class NoMachines(Provider):
    """A cloud with nothing in it; records what it was asked."""

    name = "none"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def prepare(self, infrastructure_id: str) -> None:
        self.calls.append(f"prepare {infrastructure_id}")

    def launch(self, spec: NodeSpec) -> Machine:
        raise AssertionError("no node should be launched")

    def inspect(self, provider_id: str) -> Machine:
        raise AssertionError("nothing to inspect")

    def destroy(self, provider_id: str) -> None:
        self.calls.append(f"destroy {provider_id}")

    def cleanup(self, infrastructure_id: str) -> None:
        self.calls.append(f"cleanup {infrastructure_id}")

    def list_owned(self) -> list[Machine]:
        return []


@contextmanager
def app_clients(home: Path) -> Iterator[Callable[..., TestClient]]:
    """make(**settings overrides) → a started TestClient; every one shares the database in
    `home` and is closed on leaving."""
    opened: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = replace(
            config.load(), home=home, db_url=f"sqlite:///{home / 'db'}", **overrides
        )
        client = TestClient(create_app(settings, NoMachines()))
        client.__enter__()
        opened.append(client)
        return client

    try:
        yield make
    finally:
        for client in opened:
            client.__exit__(None, None, None)
