"""`orbis snapshot` against a live server on the simulated cloud: the image URL is printed,
and the image exists at the cloud."""

from __future__ import annotations

import pytest

from orbis.providers.sim import SimProvider
from orbis.testing.server import orbis_server

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    front:
      type: tosca.nodes.Compute
"""


def test_snapshot_prints_the_image_url(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("ORBIS_PROVIDER", "sim")
    monkeypatch.setenv("ORBIS_SIM_LATENCY", "0")
    (tmp_path / "one.yaml").write_text(TEMPLATE)
    with orbis_server() as server:
        deployed = server.cli("deploy", str(tmp_path / "one.yaml"))
        assert deployed.returncode == 0, deployed.stderr
        (infra,) = server.client().get("/infrastructures", headers={
            "Accept": "application/json"}).json()["uri-list"]  # fmt: skip
        infra_id = infra["uri"].rsplit("/", 1)[-1]
        made = server.cli("snapshot", infra_id, "front", "--name", "golden", "--auto-delete")
        assert made.returncode == 0, made.stderr
        url = made.stdout.strip()
        cloud = SimProvider(server.home / "sim-cloud.db")
        assert url.startswith("sim://") and url in [i.url for i in cloud.images()]
        wrong = server.cli("snapshot", infra_id, "front", "--name", "x", "--disk", "4")
        assert wrong.returncode != 0 and "has no disk 4" in wrong.stderr + wrong.stdout
        missing = server.cli("snapshot", infra_id, "nobody", "--name", "x")
        assert missing.returncode != 0 and "no node 'nobody'" in missing.stderr + missing.stdout
