"""Operations on a running infrastructure, on real containers, through the CLI."""

from __future__ import annotations

import json
import re

import docker
import pytest

from orbis.providers.base import LABEL_INFRASTRUCTURE
from orbis.testing.engine_read import container_read
from orbis.testing.server import orbis_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    wn:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {count: 1}}
      interfaces:
        Standard:
          configure:
            implementation: |
              - hosts: all
                gather_facts: false
                tasks:
                  - name: count the configurations
                    ansible.builtin.shell: echo run >> /root/configured
"""


def test_scale_power_alter_remove_reconfigure(engine_url, tmp_path):
    engine = docker.DockerClient(base_url=engine_url)
    template = tmp_path / "wn.yaml"
    template.write_text(TEMPLATE)
    with orbis_server(engine_url) as server, server.client() as client:
        done = server.cli("deploy", str(template))
        assert done.returncode == 0, done.stdout + done.stderr
        infra_id = UUID.search(done.stdout).group(0)
        label = {"label": f"{LABEL_INFRASTRUCTURE}={infra_id}"}

        def containers() -> dict[str, str]:
            found = engine.containers.list(all=True, filters=label)
            return {c.labels["orbis.vm_id"]: c.status for c in found}

        def in_node(vm: str, command: str) -> str:
            found = engine.containers.list(filters={"label": [label["label"],
                                                              f"orbis.vm_id={vm}"]})  # fmt: skip
            return container_read(found[0], ["sh", "-c", command])[1].strip()  # reads only

        # scale 1 → 3: two new VMs, every node configured again (IM's way)
        scaled = server.cli("scale", infra_id, "wn", "3")
        assert scaled.returncode == 0, scaled.stdout + scaled.stderr
        assert "new VMs: 1, 2" in scaled.stdout
        assert sorted(containers()) == ["0", "1", "2"]
        assert in_node("0", "wc -l < /root/configured") == "2"
        assert in_node("2", "wc -l < /root/configured") == "1"

        # stop and start one node
        assert server.cli("stop", infra_id, "1").returncode == 0
        assert containers()["1"] == "exited"
        state = client.get(f"/infrastructures/{infra_id}/state").json()["state"]
        assert state["vm_states"]["1"] == "stopped"
        assert server.cli("start", infra_id, "1").returncode == 0
        assert containers()["1"] == "running"

        # resize one node in place
        alter = "system wn (\ncpu.count >= 2 and\nmemory.size >= 300m\n)\n"
        answer = client.put(f"/infrastructures/{infra_id}/vms/2", content=alter,
                            headers={"Content-Type": "text/plain"})  # fmt: skip
        assert answer.status_code == 200, answer.text
        limit = int(in_node("2", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                                 "2>/dev/null || cat /sys/fs/cgroup/memory.max"))  # fmt: skip
        assert 299_000_000 <= limit <= 300_000_000

        # remove a node by id; reconfigure one node only
        answer = client.delete(f"/infrastructures/{infra_id}/vms/0")
        assert answer.status_code == 200, answer.text
        assert sorted(containers()) == ["1", "2"]
        assert server.cli("reconfigure", infra_id, "2").returncode == 0
        assert in_node("2", "wc -l < /root/configured") == "3"

        exported = server.cli("export", infra_id)
        assert exported.returncode == 0 and json.loads(exported.stdout)
        assert server.cli("destroy", infra_id).returncode == 0
        assert containers() == {}
