"""The whole path on real containers: template → nodes → SSH → Ansible → outputs → destroy."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import docker
import httpx
import pytest

from orbis.providers.base import LABEL_INFRASTRUCTURE
from orbis.testing.server import RunningServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def leftovers(engine_url: str, infra_id: str) -> list[str]:
    client = docker.DockerClient(base_url=engine_url)
    label = f"{LABEL_INFRASTRUCTURE}={infra_id}"
    names = [c.name for c in client.containers.list(all=True, filters={"label": label})]
    names += [n.name for n in client.networks.list(filters={"label": label})]
    return names


def api(server: RunningServer) -> httpx.Client:
    return server.client()


def ssh(key_file: Path, address: str, command: str) -> str:
    done = subprocess.run(
        [
            "ssh",
            "-i",
            str(key_file),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            f"root@{address}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout + done.stderr


def test_hello_deploys_configures_serves_and_leaves_nothing(server, engine_url, tmp_path):
    done = server.cli("deploy", str(REPO / "examples/hello.yaml"), "-i", "greeting=Hi from e2e")
    assert done.returncode == 0, done.stdout + done.stderr
    infra_id = UUID.search(done.stdout).group(0)
    try:
        outputs = json.loads(server.cli("outputs", infra_id, "--json").stdout)
        page = httpx.get(outputs["url"], timeout=10)
        assert page.status_code == 200
        # the web node's Ansible step fetched the worker's greeting over the private network
        assert "Hi from e2e (served by worker_1" in page.text
        assert infra_id in page.text

        with api(server) as client:
            state = client.get(f"/infrastructures/{infra_id}/state").json()["state"]
            assert state == {
                "state": "configured",
                "vm_states": {"0": "configured", "1": "configured"},
            }
            vm = client.get(
                f"/infrastructures/{infra_id}/vms/1", headers={"Accept": "application/json"}
            ).json()["radl"][-1]
            key_file = tmp_path / "key"
            key_file.write_text(vm["disk.0.os.credentials.private_key"])
            key_file.chmod(0o600)
            # Ansible's work, seen over SSH: a systemd service it enabled and started
            assert ssh(
                key_file,
                vm["net_interface.0.ip"],
                "systemctl is-active hello-worker; systemctl is-enabled hello-worker",
            ).split() == ["active", "enabled"]
            events = client.get(f"/orbis/infrastructures/{infra_id}/events").json()["events"]
            node0 = [
                (e["from"], e["to"]) for e in events if e["subject"] == "node" and e["vm_id"] == 0
            ]
            assert node0 == [(None, "pending"), ("pending", "running"), ("running", "configured")]
            assert all(e["at"] for e in events)

        logs = server.cli("logs", infra_id, "web").stdout
        assert "Step web_page_web_conf: ok" in logs
        assert "TASK [The page] changed" in logs
        assert infra_id in server.cli("list").stdout
    finally:
        destroyed = server.cli("destroy", infra_id)
    assert destroyed.returncode == 0, destroyed.stderr
    assert leftovers(engine_url, infra_id) == []
    assert infra_id not in server.cli("list").stdout


def test_a_node_that_cannot_launch_fails_alone(server, engine_url):
    template = REPO / "tests/fixtures/deploy/one_bad_image.yaml"
    done = server.cli("deploy", str(template))
    assert done.returncode == 1  # the infrastructure as a whole did not succeed
    infra_id = UUID.search(done.stdout).group(0)
    try:
        detail = json.loads(
            httpx.get(
                f"{server.url}/orbis/infrastructures/{infra_id}",
                headers={"Authorization": server.auth_file.read_text().strip()},
            ).text
        )
        nodes = {n["name"]: n for n in detail["nodes"]}
        assert nodes["broken"]["state"] == "failed"
        assert "orbis-no-such-image" in nodes["broken"]["error"]
        assert nodes["good"]["state"] == "configured"
        assert detail["state"] == "failed"
    finally:
        assert server.cli("destroy", infra_id).returncode == 0
    assert leftovers(engine_url, infra_id) == []


def test_bad_template_is_refused_with_its_position(server):
    broken = (
        "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n"
        "  node_templates:\n    a:\n      type: tosca.nodes.Compte\n"
    )
    with api(server) as client:
        answer = client.post(
            "/infrastructures",
            content=broken,
            headers={"Content-Type": "text/yaml", "X-Orbis-Template-Name": "broken.yaml"},
        )
    assert answer.status_code == 400
    assert "broken.yaml:5:13" in answer.text
    assert "tosca.nodes.Compute" in answer.text  # the hint
