"""Deploying the curated catalogue (examples/catalogue/) in end-to-end tests: `deployed` deploys a
base template with add-ons through the CLI of a throw-away server, gives SSH access to each node
by name, and afterwards destroys it and checks that no container or network with its label
remains. Used by tests/e2e/test_catalogue_*.py (one file per group of deployments, so that
`make test`'s workers can run them side by side)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from orbis.providers.base import LABEL_INFRASTRUCTURE
from orbis.testing.server import RunningServer

REPO = Path(__file__).resolve().parents[3]
CATALOGUE = REPO / "examples/catalogue"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def leftovers(engine_url: str, infra_id: str) -> list[str]:
    client = docker.DockerClient(base_url=engine_url)
    label = f"{LABEL_INFRASTRUCTURE}={infra_id}"
    names = [c.name for c in client.containers.list(all=True, filters={"label": label})]
    names += [n.name for n in client.networks.list(filters={"label": label})]
    return names


@dataclass
class Deployed:
    """A configured infrastructure: its outputs, and SSH access to each node by name."""

    server: RunningServer
    infra_id: str
    outputs: dict[str, Any]
    key_file: Path
    nodes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name -> VMs

    def address(self, node: str, index: int = 0) -> str:
        vm = self.nodes[node][index]
        return str(vm["private_ip"] or vm["public_ip"])

    def ssh(self, node: str, command: str, index: int = 0, timeout: float = 120) -> str:
        done = subprocess.run(
            ["ssh", "-i", str(self.key_file), "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
             f"root@{self.address(node, index)}", command],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        return done.stdout + done.stderr


@contextmanager
def deployed(
    server: RunningServer, engine_url: str, tmp_path: Path, base: str, *args: str
) -> Iterator[Deployed]:
    """Deploy `base` (in the catalogue) with CLI arguments `args`; destroy it afterwards and
    check that nothing labelled with it remains."""
    started = time.monotonic()
    done = server.cli("deploy", str(CATALOGUE / base), *args)
    found = UUID.search(done.stdout)
    assert found, done.stdout + done.stderr
    infra_id = found.group(0)
    try:
        assert done.returncode == 0, done.stdout + done.stderr + server.cli("logs", infra_id).stdout
        print(f"\n{base} {' '.join(args)}: configured in {time.monotonic() - started:.1f} s")
        outputs = json.loads(server.cli("outputs", infra_id, "--json").stdout)
        with server.client() as client:
            detail = client.get(f"/orbis/infrastructures/{infra_id}").json()
            first = detail["nodes"][0]["vm_id"]
            vm = client.get(
                f"/infrastructures/{infra_id}/vms/{first}", headers={"Accept": "application/json"}
            ).json()["radl"][-1]
        key_file = tmp_path / f"key-{infra_id}"
        key_file.write_text(vm["disk.0.os.credentials.private_key"])
        key_file.chmod(0o600)
        result = Deployed(server, infra_id, outputs, key_file)
        for node in sorted(detail["nodes"], key=lambda n: n["vm_id"]):
            result.nodes.setdefault(node["name"], []).append(node)
        yield result
    finally:
        destroyed = server.cli("destroy", infra_id)
        print(f"{base}: deploy + checks + destroy in {time.monotonic() - started:.1f} s")
    assert destroyed.returncode == 0, destroyed.stderr
    assert leftovers(engine_url, infra_id) == []


def wait_for(check: Any, timeout: float = 60, every: float = 1.0) -> Any:
    """Call `check` until it returns something truthy; return that (or the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)
