"""Property-based run of schemathesis against the served OpenAPI document: no request, however
malformed, gets a 5xx. Bounded (HYPOTHESIS max_examples per operation); runs in CI."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from orbis import config
from orbis.api.app import create_app
from orbis.testing.app_clients import NoMachines
from orbis.testing.server import free_port

from .conftest import ALICE, EMPTY

pytestmark = pytest.mark.slow
MAX_EXAMPLES = 50


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home: Path = tmp_path_factory.mktemp("schemathesis")
    app = create_app(
        replace(config.load(), home=home, db_url=f"sqlite:///{home / 'db'}"), NoMachines()
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    # one real infrastructure, so generated ids sometimes hit it
    httpx.post(
        f"{url}/infrastructures",
        content=EMPTY,
        headers={"Authorization": ALICE, "Content-Type": "text/yaml"},
    )
    yield url
    server.should_exit = True
    thread.join(10)


# The document as served (the app builds it without starting); calls go to the live server.
SCHEMA = schemathesis.openapi.from_dict(create_app(config.load(), NoMachines()).openapi())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_server_errors(operation, live_url: str) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case: schemathesis.Case) -> None:
        if case.path.endswith("/stream"):
            case.query = {**(case.query or {}), "follow": "no"}
        headers = {} if "Authorization" in (case.headers or {}) else {"Authorization": ALICE}
        case.call_and_validate(
            base_url=live_url, headers=headers, checks=[not_a_server_error], timeout=30
        )

    run()
