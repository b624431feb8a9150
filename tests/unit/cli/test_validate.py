"""`orbis validate` and `orbis deploy`'s local checks: positions and hints, never a traceback."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orbis.cli.main import app

REPO = Path(__file__).resolve().parents[3]
BROKEN = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  inputs:
    n: {type: integer, default: 2, constraints: [{in_range: [1, 4]}]}
  node_templates:
    vm:
      type: tosca.nodes.indigo.Compute
      capabilities:
        hots: {properties: {num_cpus: 1}}
  outputs:
    x: {value: {concatt: [a, b]}}
"""


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_valid_example():
    result = run("validate", str(REPO / "examples/hello.yaml"))
    assert result.exit_code == 0, result.output
    assert "is valid" in result.output and "web×1" in result.output


def test_every_problem_with_position_and_hint(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN.replace("tosca.nodes.indigo.Compute", "tosca.nodes.Compute"))
    result = run("validate", str(path), "-i", "n=9", "-i", "q=1")
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    text = result.output
    assert "Traceback" not in text
    assert f"{path}:9:9: unknown capability 'hots'" in text and "did you mean 'host'?" in text
    assert f"{path}:11:16: unknown function 'concatt'" in text
    assert "9 does not satisfy in_range" in text
    assert "unknown input 'q'" in text


def test_invalid_yaml_and_missing_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("tosca_definitions_version: tosca_simple_yaml_1_0\na: b: c\n")
    result = run("validate", str(path))
    assert result.exit_code == 1 and f"{path}:2:5: invalid YAML" in result.output
    result = run("validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1 and "no such file" in result.output


def test_deploy_checks_locally_before_calling_any_server(tmp_path, monkeypatch):
    monkeypatch.setenv("ORBIS_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("ORBIS_AUTH", str(tmp_path / "auth"))
    (tmp_path / "auth").write_text("type = InfrastructureManager; username = u; password = p\n")
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    result = run("deploy", str(path))
    assert result.exit_code == 1 and "unknown function 'concatt'" in result.output
    assert "cannot reach" not in result.output


def test_unreachable_server_is_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("ORBIS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ORBIS_AUTH", str(tmp_path / "auth"))
    (tmp_path / "auth").write_text("type = InfrastructureManager; username = u; password = p\n")
    result = run("list")
    assert result.exit_code == 1
    assert "cannot reach the Orbis server at http://127.0.0.1:9" in result.output


def test_validate_counts_functions_like_nodes():
    faas = REPO / "tests/fixtures/tosca/corpus/c15_faas_standalone.yaml"
    result = run("validate", str(faas), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    assert summary["functions"] == {"lambda_fn": 1}, summary
    plain = run("validate", str(faas))
    assert "1 function(s)" in plain.output


@pytest.mark.parametrize(
    ("fixture", "systems", "containers", "functions"),
    [
        # IM's translation: a container app is a system (count 0 or 1)
        ("c12_k8s_app", {"web-app": 1}, {"web-app": 1}, {}),
        # a function hosted on an OSCAR node is a step of that node's machine, not a system
        ("c14_faas_on_oscar", {"oscar_vm": 1}, {}, {"detect": 1}),
        # a standalone function is its own system
        ("c15_faas_standalone", {"lambda_fn": 1}, {}, {"lambda_fn": 1}),
    ],
)
def test_validate_json_summarises_im_systems(fixture, systems, containers, functions):
    path = REPO / f"tests/fixtures/tosca/corpus/{fixture}.yaml"
    result = run("validate", str(path), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    assert summary["systems"] == systems
    assert summary["containers"] == containers
    assert summary["functions"] == functions
