"""`orbis validate/deploy BASE --with ADDON` and `orbis validate --json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from orbis.cli import main as cli_main
from orbis.cli.main import app

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests/fixtures/compose"
CATALOGUE = REPO / "examples/catalogue"


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_validate_with_addons():
    result = run(
        "validate", str(CATALOGUE / "cluster.yaml"), "--with", str(CATALOGUE / "slurm.yaml"),
        "--with", str(CATALOGUE / "nfs.yaml"), "-i", "wn_num=3",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "cluster.yaml + " in result.output and "is valid" in result.output
    assert "wn×3" in result.output and "4 software component(s)" in result.output


def test_validate_with_an_addon_that_replaces_a_node_warns_with_both_places():
    result = run(
        "validate", str(FIXTURES / "base.yaml"), "--with", str(FIXTURES / "addon_conflict.yaml")
    )
    assert result.exit_code == 0, result.output
    assert f"{FIXTURES / 'addon_conflict.yaml'}:7:5: node 'node' redefined by" in result.output
    assert f"{FIXTURES / 'base.yaml'}:18:5" in result.output
    assert "Traceback" not in result.output


def test_validate_json_valid():
    result = run(
        "validate", str(FIXTURES / "base.yaml"), "--with", str(FIXTURES / "addons/in_folder.yaml"),
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"valid", "problems", "warnings", "summary"}
    assert report["valid"] is True and report["problems"] == []
    warning = report["warnings"][0]
    assert set(warning) == {"file", "line", "col", "message"}
    assert warning["file"] == str(FIXTURES / "addons/in_folder.yaml")
    assert (warning["line"], warning["col"]) == (8, 5)
    assert "input 'cpus' redefined by in_folder.yaml" in warning["message"]
    summary = report["summary"]
    assert summary["computes"] == {"node": 1}
    assert summary["components"] == ["job"]
    assert summary["inputs"] == {"cpus": 2}
    assert summary["files"] == [
        str(FIXTURES / "base.yaml"),
        str(FIXTURES / "addons/in_folder.yaml"),
    ]


def test_validate_json_problems(tmp_path):
    result = run(
        "validate",
        str(FIXTURES / "base.yaml"),
        "--with",
        str(FIXTURES / "addon_bad_ref.yaml"),
        "--json",
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False and report["warnings"] == []
    assert report["problems"], report
    for problem in report["problems"]:
        assert set(problem) == {"file", "line", "col", "message", "hint"}
    first = report["problems"][0]
    assert first["file"] == str(FIXTURES / "addon_bad_ref.yaml") and first["line"] == 10
    # a missing file is a problem without a position, still JSON
    result = run("validate", str(tmp_path / "nope.yaml"), "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and report["problems"][0]["line"] is None
    assert "no such file" in report["problems"][0]["message"]


def test_validate_json_plain_template():
    result = run("validate", str(REPO / "examples/hello.yaml"), "--json")
    report = json.loads(result.stdout)
    assert report["valid"] and report["summary"]["computes"] == {"web": 1, "worker": 1}


class FakeClient:
    sent: dict[str, Any] = {}

    def create(self, template: str, name: str, wait: bool = False) -> str:
        FakeClient.sent = {"template": template, "name": name}
        return "00000000-0000-0000-0000-000000000000"


def test_deploy_with_addon_sends_one_template_with_the_addons_playbooks(monkeypatch):
    monkeypatch.setattr(cli_main, "client", lambda: FakeClient())
    result = run(
        "deploy", str(FIXTURES / "base.yaml"), "--with", str(FIXTURES / "addons/in_folder.yaml"),
        "--no-wait", "-i", "cpus=1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = yaml.safe_load(FakeClient.sent["template"])
    assert FakeClient.sent["name"] == "base.yaml"
    nodes = sent["topology_template"]["node_templates"]
    assert set(nodes) == {"node", "job"}
    # the add-on's playbook (relative to its own folder) travels inline
    assert "ansible.builtin.debug" in nodes["job"]["interfaces"]["Standard"]["create"]
    relationship = nodes["job"]["requirements"][1]["dependency"]["relationship"]
    assert (
        "ansible.builtin.debug" in relationship["interfaces"]["Configure"]["pre_configure_source"]
    )
    assert sent["topology_template"]["inputs"]["cpus"]["default"] == 1  # -i beats the add-on
    assert sent["metadata"]["childs"] == ["addons/in_folder.yaml"]


def test_deploy_link_card(monkeypatch):
    monkeypatch.setattr(cli_main, "client", lambda: FakeClient())
    result = run("deploy", str(FIXTURES / "link.yaml"), "--no-wait")
    assert result.exit_code == 0, result.output
    sent = yaml.safe_load(FakeClient.sent["template"])
    assert set(sent["topology_template"]["node_templates"]) == {"node", "web"}
    assert (
        "port {{ port"
        in sent["topology_template"]["node_templates"]["web"]["interfaces"]["Standard"][
            "configure"
        ]["implementation"]
    )


def test_deploy_refuses_a_wrong_addon_before_calling_a_server(monkeypatch):
    def no_server() -> None:
        raise AssertionError("no server call expected")

    monkeypatch.setattr(cli_main, "client", no_server)
    result = run(
        "deploy", str(FIXTURES / "base.yaml"), "--with", str(FIXTURES / "addon_wrong_parent.yaml")
    )
    assert result.exit_code == 1
    assert "is an add-on of other_base.yaml, not of base.yaml" in result.output
