"""Hostile imports: a template sent to the server never reads the server's files, and URL
imports go through the guarded download (real HTTP servers on 127.0.0.1)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orbis.lang import CLIENT, TemplateError, load_template
from orbis.lang.sources import RULE
from orbis.testing.hostile_http import GIB, HostileServer, hostile_server

TYPES = """tosca_definitions_version: tosca_simple_yaml_1_0
node_types:
  my.nodes.App:
    derived_from: tosca.nodes.SoftwareComponent
"""


def template(entry: str) -> str:
    return f"""tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - {entry}
topology_template:
  node_templates:
    vm: {{type: tosca.nodes.Compute}}
"""


def problem(text: str, **kw: object) -> str:
    with pytest.raises(TemplateError) as caught:
        load_template("t.yaml", text=text, **kw)  # type: ignore[arg-type]
    return str(caught.value)


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("/etc/passwd", "an absolute path names a file of the server"),
        ("file:///etc/passwd", "file URLs name files of the server"),
        ("../../etc/passwd", "'..' leaves the template's bundle"),
        ("types/../../../etc/passwd", "'..' leaves the template's bundle"),
        ("/dev/zero", "an absolute path names a file of the server"),
        ("~root/.ssh/id_rsa", "an absolute path names a file of the server"),
        ("types.yaml", "no such file was sent with the template"),
        ("gopher://example.invalid/x", "not http(s)"),
    ],
)
def test_server_refuses_files_of_its_disk(entry: str, why: str) -> None:
    started = time.monotonic()
    message = problem(template(entry))
    assert time.monotonic() - started < 1  # /dev/zero is never opened
    assert f"t.yaml:3:5: import '{entry}' refused: {why}" in message
    assert RULE in message


def test_server_refuses_a_file_repository() -> None:
    text = template("{file: passwd, repository: etc}").replace(
        "imports:", "repositories:\n  etc: file:///etc\nimports:"
    )
    assert "import 'file:///etc/passwd' refused: file URLs name files" in problem(text)


def test_server_does_not_read_a_relative_file_next_to_its_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "types.yaml").write_text(TYPES)
    monkeypatch.chdir(tmp_path)  # the server's working folder holds a matching file
    assert "no such file was sent with the template" in problem(template("types.yaml"))


def test_the_cli_reads_local_imports_but_not_devices(tmp_path: Path) -> None:
    (tmp_path / "types.yaml").write_text(TYPES)
    t = tmp_path / "t.yaml"
    t.write_text(template("types.yaml"))
    assert load_template(t, sources=CLIENT).computes
    started = time.monotonic()
    t.write_text(template("/dev/zero"))
    with pytest.raises(TemplateError, match="cannot read import '/dev/zero': not a regular file"):
        load_template(t, sources=CLIENT)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    t.write_text(template(str(fifo)))
    with pytest.raises(TemplateError, match="not a regular file"):
        load_template(t, sources=CLIENT)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("entry", "why"),
    [("/etc/passwd", "an absolute path"), ("../../../../etc/passwd", "'..' leaves")],
)
def test_template_file_of_the_server_refused(entry: str, why: str) -> None:
    text = (
        f"tosca_definitions_version: tosca_simple_yaml_1_0\nimports:\n  - template_file: {entry}\n"
    )
    message = problem(text)
    assert f"t.yaml:3:20: template_file '{entry}' refused: {why}" in message


def test_template_file_symlink_out_of_the_operator_folder_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    secret = tmp_path / "secret.yaml"
    secret.write_text("tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template: {}\n")
    (folder / "base.yaml").symlink_to(secret)
    monkeypatch.setenv("ORBIS_TOSCA_TEMPLATES", str(folder))
    text = (
        "tosca_definitions_version: tosca_simple_yaml_1_0\nimports:\n  - template_file: base.yaml\n"
    )
    assert "template_file 'base.yaml' not found offline" in problem(text)
    (folder / "real.yaml").write_text(secret.read_text())  # a real file in the folder: read
    load_template("t.yaml", text=text.replace("base.yaml", "real.yaml"))  # found and merged


@pytest.mark.parametrize(
    "impl", ["/etc/passwd", "file:///etc/shadow", "../../etc/passwd", "~/.ssh/id_rsa"]
)
def test_recipe_or_artifact_naming_a_server_file_refused(impl: str) -> None:
    text = f"""tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    vm:
      type: tosca.nodes.Compute
      artifacts:
        tool: {{file: "{impl}", type: tosca.artifacts.File}}
      interfaces:
        Standard:
          configure: {{implementation: "{impl}"}}
"""
    message = problem(text)
    assert f"t.yaml:7:15: '{impl}' refused" in message  # the artifact
    assert f"t.yaml:10:39: '{impl}' refused" in message  # the recipe


# -- URL imports: the guarded download ------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileServer]:
    monkeypatch.setenv("ORBIS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ORBIS_ARTIFACT_MAP", raising=False)
    with hostile_server() as s:
        s.files["types.yaml"] = TYPES
        monkeypatch.setenv("ORBIS_FETCH_ALLOW", f"127.0.0.1:{s.port}")
        yield s


@pytest.fixture
def other() -> Iterator[HostileServer]:
    with hostile_server() as s:
        s.files["types.yaml"] = TYPES
        yield s


def test_url_import_from_an_allowed_server(server: HostileServer) -> None:
    app = "\n    app: {type: my.nodes.App, requirements: [{host: vm}]}"
    text = template(f"{server.url}/files/types.yaml") + app
    assert load_template("t.yaml", text=text).components["app"]


def test_url_import_not_allowed_is_refused(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORBIS_FETCH_ALLOW")
    message = problem(template(f"{server.url}/files/types.yaml"))
    assert (
        "t.yaml:3:5: cannot import" in message and "loopback address (ORBIS_FETCH_ALLOW)" in message
    )
    assert server.hits == []


def test_url_import_redirected_to_loopback_refused_at_the_hop(
    server: HostileServer, other: HostileServer
) -> None:
    message = problem(template(f"{server.url}/redirect?to={other.url}/files/types.yaml"))
    assert "t.yaml:3:5: cannot import" in message
    assert f"{other.url}/files/types.yaml: refused: 127.0.0.1 is a loopback address" in message
    assert other.hits == []


def test_url_import_redirected_to_the_metadata_service_refused(server: HostileServer) -> None:
    message = problem(template(f"{server.url}/redirect?to=http://169.254.169.254/latest/"))
    assert "t.yaml:3:5: cannot import" in message
    assert "169.254.169.254 is the cloud metadata service" in message


def test_one_gigabyte_import_stops_at_the_cap(server: HostileServer) -> None:
    message = problem(template(f"{server.url}/big?bytes={GIB}"))
    assert "larger than 5242880 bytes (ORBIS_FETCH_MAX_BYTES)" in message
    time.sleep(0.3)
    assert server.bytes_sent < 64 * 1024 * 1024
