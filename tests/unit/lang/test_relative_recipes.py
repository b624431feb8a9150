"""A relative recipe or artifact IM does not hold resolves, as in IM, against grycap's tosca
repository (tosca-dialect.md §2.6), and is fetched through the guarded artifact download."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from orbis.configure.artifacts import ArtifactError, fetch
from orbis.lang import CLIENT, TemplateError, load_template
from orbis.lang.tosca.operations import IM_ARTIFACTS_URL

TEXT = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    vm:
      type: tosca.nodes.Compute
      artifacts:
        tool: {file: tools/get.sh, type: tosca.artifacts.File}
      interfaces:
        Standard:
          configure:
            implementation: docker/install.yml
            inputs:
              script: {get_artifact: [SELF, tool]}
"""
PLAYBOOK = "- hosts: all\n  tasks:\n    - debug: {msg: mirrored}\n"


def test_the_server_resolves_a_relative_recipe_against_grycap_tosca() -> None:
    t = load_template("t.yaml", text=TEXT)
    [op] = t.computes["vm"].operations
    url = "https://raw.githubusercontent.com/grycap/tosca/main/artifacts/docker/install.yml"
    assert op.implementation == url and op.inline is None
    assert op.inputs["script"].args[2] == f"{IM_ARTIFACTS_URL}tools/get.sh"  # get_artifact too
    warning = (
        f"t.yaml:11:29: 'docker/install.yml' is not sent with the template: fetched from {url}"
    )
    assert any(warning in w for w in t.warnings)


def test_the_cli_prefers_the_file_next_to_the_template(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(TEXT)
    [op] = load_template(path, sources=CLIENT).computes["vm"].operations
    assert op.implementation == f"{IM_ARTIFACTS_URL}docker/install.yml"  # not here: IM's
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "install.yml").write_text(PLAYBOOK)
    [op] = load_template(path, sources=CLIENT).computes["vm"].operations
    assert op.implementation == str(tmp_path / "docker" / "install.yml")


@pytest.mark.parametrize("name", ["../docker/install.yml", "/etc/passwd"])
def test_names_leaving_the_bundle_are_still_refused(name: str) -> None:
    with pytest.raises(TemplateError, match=f"'{name}' refused"):
        load_template("t.yaml", text=TEXT.replace("docker/install.yml", name))


def test_the_fallback_goes_through_the_mirror_and_the_download_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [op] = load_template("t.yaml", text=TEXT).computes["vm"].operations
    monkeypatch.setenv("ORBIS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ORBIS_ARTIFACT_MAP", raising=False)

    async def metadata_service(host: str, port: int, url: str) -> list[object]:
        return [ipaddress.ip_address("169.254.169.254")]  # a hostile DNS answer

    monkeypatch.setattr("orbis.net.fetch._resolve", metadata_service)
    with pytest.raises(
        ArtifactError,
        match=r"could not be fetched: refused: .*169.254.169.254. is the cloud metadata",
    ):
        fetch(str(op.implementation))  # the deployer's fetch of every URL recipe
    mirror = tmp_path / "mirror"
    (mirror / "docker").mkdir(parents=True)
    (mirror / "docker" / "install.yml").write_text(PLAYBOOK)
    monkeypatch.setenv("ORBIS_ARTIFACT_MAP", f"{IM_ARTIFACTS_URL}={mirror}")
    assert fetch(str(op.implementation)) == PLAYBOOK


def test_the_cli_says_a_local_script_does_not_travel(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(TEXT.replace("docker/install.yml", "run.sh"))
    (tmp_path / "run.sh").write_text("#!/bin/sh\necho hi\n")
    template = load_template(path, sources=CLIENT)
    assert any("'run.sh' is not a playbook, so it is not sent with the template: give it by URL"
               in w for w in template.warnings)  # fmt: skip
