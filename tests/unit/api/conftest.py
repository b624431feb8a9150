"""Fixtures for API tests: an app on a cloud that holds no machines, and helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from orbis.testing.app_clients import app_clients

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


@pytest.fixture
def make_client(tmp_path) -> Iterator[Callable[..., TestClient]]:
    """make_client(**settings overrides) → a started TestClient (closed at the end)."""
    with app_clients(tmp_path) as make:
        yield make


def create(client: TestClient, auth: str = ALICE, body: str = EMPTY) -> str:
    answer = client.post("/infrastructures", content=body, headers={**YAML, "Authorization": auth})
    assert answer.status_code == 200, answer.text
    return answer.text.rsplit("/", 1)[-1]
