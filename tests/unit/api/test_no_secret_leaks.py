"""Planted secrets (a cloud password and access key in the auth line, a bearer-looking token,
ORBIS_SECRET_KEY) never show up in the server's log file, in any API answer, in contmsg, or in
the events table, after a deploy that fails at a cloud that echoes what it was sent back in its
error (as some do). The failing cloud is an EC2 endpoint on 127.0.0.1 answering AuthFailure."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orbis import config
from orbis.api.app import create_app
from orbis.testing.app_clients import NoMachines
from orbis.testing.standins.moto import _ec2_server

from .conftest import ALICE, YAML

PASSWORD = "planted-cloud-password-7f3a9c"
ACCESS_KEY = "AKIAPLANTED7F3A9C"
SERVER_SECRET = "planted-server-secret-51d2e8"
TOKEN = "plantedtoken.9e1b7c.x"
PLANTED = (PASSWORD, SERVER_SECRET, TOKEN)  # an access key id is an identifier, not a secret
TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    node:
      type: tosca.nodes.Compute
      capabilities:
        host: {properties: {num_cpus: 1, mem_size: 1 GB}}
        os: {properties: {image: "aws://us-east-1/ami-12345678"}}
"""
CLOUD = (f"id = aws; type = EC2; username = {ACCESS_KEY}; password = {PASSWORD}; "
         f"token = {TOKEN}")  # fmt: skip
AUTH = {"Authorization": f"{ALICE}\\n{CLOUD}"}


@pytest.fixture
def echoing_cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """EC2 refusing every call with an error text that repeats the credentials it got."""

    def refuse(action: str, params: Mapping[str, list[str]]) -> tuple[int, str, bytes]:
        body = (
            "<Response><Errors><Error><Code>AuthFailure</Code><Message>"
            f"AWS was not able to validate the provided access credentials {ACCESS_KEY} / "
            f"{PASSWORD} (password = {PASSWORD})</Message></Error></Errors>"
            "<RequestID>1</RequestID></Response>"
        )
        return 401, "text/xml;charset=UTF-8", body.encode()

    with _ec2_server(refuse, None) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        yield url


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """The server's log, as an operator would keep it (every logger, DEBUG and up)."""
    path = tmp_path / "server.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield path
    root.removeHandler(handler)
    root.setLevel(old_level)
    handler.close()


def test_failed_deploy_leaks_no_secret(echoing_cloud: str, log_file: Path, tmp_path: Path) -> None:
    settings = replace(config.load(), home=tmp_path, db_url=f"sqlite:///{tmp_path / 'orbis.db'}",
                       secret_key=SERVER_SECRET)  # fmt: skip
    answers: list[str] = []
    with TestClient(create_app(settings, NoMachines())) as client:
        # IM's synchronous create answers the launch failure itself (and destroys it)
        refused = client.post("/infrastructures", content=TEMPLATE, headers={**AUTH, **YAML})
        answers.append(refused.text)
        assert refused.status_code == 400, refused.text
        created = client.post(
            "/infrastructures?async=1", content=TEMPLATE, headers={**AUTH, **YAML}
        )
        answers.append(created.text)
        assert created.status_code == 200, created.text
        infra = created.text.rsplit("/", 1)[-1]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = client.get(f"/infrastructures/{infra}/state", headers=AUTH)
            if '"failed"' in state.text or '"unconfigured"' in state.text:
                break
            time.sleep(0.2)
        answers.append(state.text)
        for path in ("contmsg", "vms/0", "vms/0/contmsg", "outputs", "radl"):
            answers.append(client.get(f"/infrastructures/{infra}/{path}", headers=AUTH).text)
        # error answers, one of which quotes the header back (a malformed auth line)
        answers.append(client.get("/infrastructures/nope/state", headers=AUTH).text)
        bad = {"Authorization": f"{CLOUD}; password = {PASSWORD}"}
        answers.append(client.get("/infrastructures", headers=bad).text)
        logging.getLogger("orbis.test").error("cloud said: %s", f"password = {PASSWORD}")
    contmsg = answers[3]
    assert "AuthFailure" in contmsg or "[redacted]" in contmsg, contmsg  # the failure is told
    for handler in logging.getLogger().handlers:
        handler.flush()
    logged = log_file.read_text()
    assert "cloud said" in logged  # the log file is the one the server wrote to
    database = b"".join(p.read_bytes() for p in tmp_path.glob("orbis.db*"))
    for secret in PLANTED:
        assert secret not in logged, secret
        for text in answers:
            assert secret not in text, (secret, text)
        assert secret.encode() not in database, secret  # events, node errors, logs, contmsg


def test_error_answers_are_redacted() -> None:
    """The last net: whatever message becomes an API error answer (api/negotiation.py)."""
    from starlette.requests import Request

    from orbis import redact
    from orbis.api.negotiation import error_response

    redact.remember([PASSWORD])
    request = Request({"type": "http", "headers": [(b"accept", b"application/json")]})
    answer = error_response(request, 400, f"the cloud said: {PASSWORD}; token = {TOKEN}")
    assert answer.status_code == 400
    assert b"the cloud said: [redacted]" in answer.body
    assert PASSWORD.encode() not in answer.body and TOKEN.encode() not in answer.body
