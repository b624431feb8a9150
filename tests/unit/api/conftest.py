"""Fixtures for API tests: an app on a cloud that holds no machines, and helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orbis import config
from orbis.api.app import create_app
from orbis.providers.base import Machine, NodeSpec, Provider

EMPTY = """tosca_definitions_version: tosca_simple_yaml_1_0
metadata:
  infra_name: empty
topology_template:
  node_templates:
    front:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties:
            count: 0
        host:
          properties:
            num_cpus: 2
            mem_size: 2 GB
  outputs:
    name:
      value: { get_attribute: [ front, tosca_name ] }
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a1"
BOB = "id = im; type = InfrastructureManager; username = bob; password = b1"
YAML = {"Content-Type": "text/yaml"}


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


@pytest.fixture
def make_client(tmp_path) -> Iterator[Callable[..., TestClient]]:
    """make_client(**settings overrides) → a started TestClient (closed at the end)."""
    opened: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = replace(
            config.load(), home=tmp_path, db_url=f"sqlite:///{tmp_path / 'db'}", **overrides
        )
        client = TestClient(create_app(settings, NoMachines()))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def create(client: TestClient, auth: str = ALICE, body: str = EMPTY) -> str:
    answer = client.post("/infrastructures", content=body, headers={**YAML, "Authorization": auth})
    assert answer.status_code == 200, answer.text
    return answer.text.rsplit("/", 1)[-1]
