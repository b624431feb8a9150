"""`orbis export --format im` against a live server on the simulated cloud: IM's form, which
`orbis import` reads back with the same nodes."""

from __future__ import annotations

import json

import pytest

from orbis.testing.server import orbis_server

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    front:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {count: 2}}
"""


def test_export_in_ims_form_and_import_it_back(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("ORBIS_PROVIDER", "sim")
    monkeypatch.setenv("ORBIS_SIM_LATENCY", "0")
    (tmp_path / "two.yaml").write_text(TEMPLATE)
    with orbis_server() as server:
        deployed = server.cli("deploy", str(tmp_path / "two.yaml"))
        assert deployed.returncode == 0, deployed.stderr
        (infra,) = server.client().get("/infrastructures", headers={
            "Accept": "application/json"}).json()["uri-list"]  # fmt: skip
        infra_id = infra["uri"].rsplit("/", 1)[-1]
        exported = server.cli("export", infra_id, "--format", "im")
        assert exported.returncode == 0, exported.stderr
        doc = json.loads(exported.stdout)
        assert doc["auth"] is None and len(doc["vm_list"]) == 2
        (tmp_path / "im.json").write_text(exported.stdout)
        imported = server.cli("import", str(tmp_path / "im.json"))
        assert imported.returncode == 0, imported.stderr + imported.stdout
        again = imported.stdout.split()[1]
        assert again != infra_id
        vms = server.client().get(f"/infrastructures/{again}", headers={
            "Accept": "application/json"}).json()["uri-list"]  # fmt: skip
        assert [v["uri"].rsplit("/", 1)[-1] for v in vms] == ["0", "1"]
        wrong = server.cli("export", infra_id, "--format", "xml")
        assert wrong.returncode != 0 and "unknown format 'xml'" in wrong.stderr + wrong.stdout
