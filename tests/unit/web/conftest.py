"""Fixtures for the dashboard's tests: the whole app (API + /ui) on a cloud with no machines,
and a browser-like client that logs in through the form."""

from __future__ import annotations

import re
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
  outputs:
    greeting:
      value: hello
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a1"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


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
    with app_clients(tmp_path) as make:
        yield make


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()
