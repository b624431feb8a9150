"""A hostile import POSTed to the API: 400 naming file:line:col and the rule, nothing read."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from orbis.testing.hostile_http import hostile_server

from .conftest import ALICE, YAML

HOSTILE = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - {entry}
topology_template:
  node_templates:
    vm: {{type: tosca.nodes.Compute}}
"""


def post(client: TestClient, entry: str) -> tuple[int, str]:
    body = HOSTILE.format(entry=entry)
    answer = client.post("/infrastructures", content=body, headers={**YAML, "Authorization": ALICE})
    return answer.status_code, answer.text


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("/etc/passwd", "an absolute path names a file of the server"),
        ("file:///etc/passwd", "file URLs name files of the server"),
        ("../../etc/passwd", "'..' leaves the template's bundle"),
        ("/dev/zero", "an absolute path names a file of the server"),
        ("~root/.ssh/authorized_keys", "an absolute path names a file of the server"),
    ],
)
def test_import_of_a_server_file_is_a_400(
    make_client: Callable[..., TestClient], entry: str, why: str
) -> None:
    status, text = post(make_client(), entry)
    assert status == 400
    assert f":3:5: import '{entry}' refused: {why}" in text
    assert "root:" not in text  # nothing of /etc/passwd came back


@pytest.fixture
def allowed_server(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ORBIS_HOME", str(tmp_path / "home"))
    with hostile_server() as first:
        monkeypatch.setenv("ORBIS_FETCH_ALLOW", f"127.0.0.1:{first.port}")
        yield first.url


def test_import_redirected_to_the_metadata_service_is_a_400(
    make_client: Callable[..., TestClient], allowed_server: str
) -> None:
    status, text = post(make_client(), f"{allowed_server}/redirect?to=http://169.254.169.254/")
    assert status == 400
    assert ":3:5: cannot import" in text and "169.254.169.254 is the cloud metadata service" in text


def test_import_redirected_to_loopback_is_a_400(
    make_client: Callable[..., TestClient], allowed_server: str
) -> None:
    with hostile_server() as internal:
        internal.files["types.yaml"] = "tosca_definitions_version: tosca_simple_yaml_1_0\n"
        target = f"{internal.url}/files/types.yaml"
        status, text = post(make_client(), f"{allowed_server}/redirect?to={target}")
        assert internal.hits == []
    assert status == 400
    assert f"{target}: refused: 127.0.0.1 is a loopback address (ORBIS_FETCH_ALLOW)" in text
