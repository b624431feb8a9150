"""Fixtures for the dashboard's tests: the whole app (API + /ui) on a cloud with no machines,
and a browser-like client that logs in through the form."""

from __future__ import annotations

import re
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
  outputs:
    greeting:
      value: hello
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a1"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class NoMachines(Provider):
    """A cloud with nothing in it."""

    name = "none"

    def prepare(self, infrastructure_id: str) -> None:
        pass

    def launch(self, spec: NodeSpec) -> Machine:
        raise AssertionError("no node should be launched")

    def inspect(self, provider_id: str) -> Machine:
        raise AssertionError("nothing to inspect")

    def destroy(self, provider_id: str) -> None:
        pass

    def cleanup(self, infrastructure_id: str) -> None:
        pass

    def list_owned(self) -> list[Machine]:
        return []


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def login(client: TestClient, user: str = "alice", password: str = "a1") -> str:
    """Log in through the form; the CSRF token of the new session."""
    token = csrf_of(client.get("/ui/login").text)
    answer = client.post("/ui/login", data={"csrf": token, "username": user,
                                            "password": password, "next": "/ui/"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return csrf_of(answer.text)


@pytest.fixture
def make_client(tmp_path) -> Iterator[Callable[..., TestClient]]:
    """make_client(**settings overrides) → a started TestClient sharing one database."""
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


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()
