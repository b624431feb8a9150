"""`orbis alter` against a live server on the simulated cloud: a resize and a new disk in one
call, shown in the VM's RADL; the next disk gets the next number; bad sizes are refused."""

from __future__ import annotations

import pytest

from orbis.providers.sim import SimProvider
from orbis.testing.server import orbis_server

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    front:
      type: tosca.nodes.Compute
      capabilities:
        host: {properties: {num_cpus: 1, mem_size: 1 GB}}
"""


def test_alter_resizes_and_adds_numbered_disks(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("ORBIS_PROVIDER", "sim")
    monkeypatch.setenv("ORBIS_SIM_LATENCY", "0")
    (tmp_path / "one.yaml").write_text(TEMPLATE)
    with orbis_server() as server:
        assert server.cli("deploy", str(tmp_path / "one.yaml")).returncode == 0
        (infra,) = server.client().get("/infrastructures", headers={
            "Accept": "application/json"}).json()["uri-list"]  # fmt: skip
        infra_id = infra["uri"].rsplit("/", 1)[-1]
        done = server.cli("alter", infra_id, "front", "--cpus", "2", "--memory", "2G",
                          "--disk", "10G:/data")  # fmt: skip
        assert done.returncode == 0, done.stderr
        line = " ".join(done.stdout.split())
        assert line.startswith("VM 0: cpu.count = 2")
        assert "disk.1.size = 10000000000" in line and "disk.1.mount_path = /data" in line
        again = server.cli("alter", infra_id, "0", "--disk", "1G")
        assert again.returncode == 0, again.stderr
        assert "disk.2.size = 1000000000" in " ".join(again.stdout.split())
        cloud = SimProvider(server.home / "sim-cloud.db")
        (machine,) = cloud.list_owned()
        assert cloud.disks(machine.provider_id) == {1: 10**10, 2: 10**9}
        bad = server.cli("alter", infra_id, "front", "--disk", "lots")
        assert bad.returncode != 0 and "not a size" in bad.stderr + bad.stdout
        none = server.cli("alter", infra_id, "front")
        assert none.returncode != 0 and "nothing to change" in none.stderr + none.stdout
