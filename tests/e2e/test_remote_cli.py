"""`orbis ssh`, `orbis get`, `orbis put` against a real server and real nodes: a command on the
public node, the same on a private-only node (reached through the public one, as on a cloud),
and a file copied up and back down through that jump."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orbis.testing.server import orbis_server

pytestmark = [pytest.mark.e2e]

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    front:
      type: tosca.nodes.Compute
      capabilities:
        endpoint: {properties: {network_name: PUBLIC}}
    wn:
      type: tosca.nodes.Compute
"""


def test_ssh_get_put_reach_public_and_private_nodes(engine_url: str, tmp_path: Path) -> None:
    with orbis_server(engine_url) as server:
        server.env["ORBIS_LOCAL_PRIVATE_REACHABLE"] = "no"  # private nodes only via the front-end
        server.stop()
        server.start()
        template = tmp_path / "two.yaml"
        template.write_text(TEMPLATE)
        deployed = server.cli("deploy", str(template))
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        (infra_id,) = server.client().get("/infrastructures").text.split()
        infra_id = infra_id.rsplit("/", 1)[-1]
        detail = server.client().get(f"/orbis/infrastructures/{infra_id}").json()
        nodes = {n["name"]: n for n in detail["nodes"]}
        assert nodes["front"]["public_ip"] and not nodes["wn"]["public_ip"]

        # default node: the one with a public address; a command after `--`, its exit code kept
        shown = server.cli("ssh", infra_id, "--", "hostname", "-I")
        assert shown.returncode == 0, shown.stderr
        assert nodes["front"]["private_ip"] in shown.stdout.split()
        failed = server.cli("ssh", infra_id, "front", "--", "sh", "-c", "exit 7")
        assert failed.returncode == 7

        # the private node: through the front-end (its sshd sees the front-end as the client)
        via = server.cli("ssh", infra_id, "wn", "--", "sh", "-c", 'echo "$SSH_CONNECTION"')
        assert via.returncode == 0, via.stderr
        assert via.stdout.split()[0] == nodes["front"]["private_ip"]
        login = server.client().get(f"/orbis/infrastructures/{infra_id}/vms/1/login").json()
        assert login["jump"]["address"] == nodes["front"]["public_ip"]

        # put then get through the jump: the bytes come back unchanged
        payload = tmp_path / "payload.bin"
        payload.write_bytes(bytes(range(256)) * 64)
        put = server.cli("put", infra_id, "wn", str(payload), "/root/payload.bin")
        assert put.returncode == 0, put.stderr
        back = tmp_path / "back.bin"
        got = server.cli("get", infra_id, "wn", "/root/payload.bin", str(back))
        assert got.returncode == 0, got.stderr
        assert back.read_bytes() == payload.read_bytes()

        missing = server.cli("ssh", infra_id, "nosuch", "--", "true")
        assert missing.returncode == 1 and "no node 'nosuch'" in missing.stderr
        assert json.loads(server.cli("outputs", infra_id, "--json").stdout or "{}") == {}
