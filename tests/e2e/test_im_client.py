"""IM's own command-line client (PyPI IM-client, unchanged) driving a live Orbis server on
real containers: the session a user of IM would run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orbis.testing.server import RunningServer, orbis_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
metadata:
  infra_name: imclient-e2e
topology_template:
  node_templates:
    node:
      type: tosca.nodes.Compute
      interfaces:
        Standard:
          configure:
            implementation: |
              - hosts: all
                gather_facts: false
                tasks:
                  - ansible.builtin.copy:
                      dest: /root/from-im-client
                      content: "yes\\n"
  outputs:
    node_name:
      value: { get_attribute: [ node, tosca_name ] }
"""


def im_client_command() -> list[str]:
    found = shutil.which("im_client", path=str(Path(sys.executable).parent))
    if found is None:
        reason = "IM-client is not installed (pip install -e '.[dev]')"
        if os.environ.get("ORBIS_E2E_REQUIRED") == "1":  # CI: a missing client is a failure
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return [found]


class ImClient:
    def __init__(self, server: RunningServer) -> None:
        self.base = [*im_client_command(), "-r", server.url, "-a", str(server.auth_file)]

    def __call__(self, *args: str, ok: bool = True) -> str:
        done = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=600, input=""
        )
        text = done.stdout + done.stderr
        if ok:
            assert done.returncode == 0, f"im_client {' '.join(args)}:\n{text}"
        return text

    def wait_state(self, infra_id: str, wanted: str = "configured", timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self("getstate", infra_id)
            state = re.search(r"infrastructure is in state: (\w+)", text).group(1)
            if (
                state == wanted
                or state in ("failed", "unconfigured")
                or time.monotonic() > deadline
            ):
                return state
            time.sleep(1)


@pytest.fixture(scope="module")
def server(engine_url: str):
    with orbis_server(engine_url, user="imclient") as running:
        yield running


@pytest.fixture(scope="module")
def im(server: RunningServer) -> ImClient:
    return ImClient(server)


@pytest.fixture
def template(tmp_path: Path) -> Path:
    path = tmp_path / "one.yaml"  # the .yaml suffix makes im_client send TOSCA
    path.write_text(TEMPLATE)
    return path


def test_im_client_session(im: ImClient, server: RunningServer, template: Path, tmp_path: Path):
    assert "IM service version" in im("getversion")
    infra_id = UUID.search(im("create", str(template))).group(0)
    try:
        assert im.wait_state(infra_id) == "configured"
        assert infra_id in im("list")
        assert infra_id in im("-n", "list")  # --name: the filter route
        assert "VM 0:" in im("getcontmsg", infra_id)
        vm = im("getvminfo", infra_id, "0")
        assert "net_interface.0.ip" in vm and "disk.0.os.credentials.username" in vm
        assert im("getvminfo", infra_id, "0", "state").strip().endswith("configured")
        assert "node_name = node" in im("getoutputs", infra_id)
        radl = im("getradl", infra_id, ok=False)
        assert "system" in radl or "not supported" in radl
        # export with delete, then import: a new id (never the one in the data), same nodes
        exported = im("export", infra_id, "1")
        data_file = tmp_path / "data.json"
        data_file.write_text(exported.strip().splitlines()[-1])  # after "Connected with: ..."
        assert infra_id not in im("list")
        imported = UUID.search(im("import", str(data_file)))
        assert imported is not None and imported.group(0) != infra_id
        infra_id = imported.group(0)
        assert im.wait_state(infra_id) == "configured"
    finally:
        im("destroy", infra_id, "-y", ok=False)
    assert infra_id not in im("list")
    log = (server.home / "server.log").read_text()
    assert "Traceback" not in log


def test_im_client_lifecycle(im: ImClient, template: Path):
    infra_id = UUID.search(im("create", str(template))).group(0)
    try:
        assert im.wait_state(infra_id) == "configured"
        added = im("addresource", infra_id, str(template.with_name("more.yaml")), ok=False)
        scaled = TEMPLATE.replace(
            "type: tosca.nodes.Compute",
            "type: tosca.nodes.Compute\n      capabilities:\n        scalable:\n"
            "          properties:\n            count: 2",
        )
        template.with_name("more.yaml").write_text(scaled)
        added = im("addresource", infra_id, str(template.with_name("more.yaml")))
        assert "1" in added
        assert im.wait_state(infra_id) == "configured"
        im("removeresource", infra_id, "1")
        im("stop", infra_id)
        assert im.wait_state(infra_id, "stopped") == "stopped"
        im("start", infra_id)
        assert im.wait_state(infra_id) == "configured"
        im("reconfigure", infra_id)
        assert im.wait_state(infra_id) == "configured"
        states = json.loads(im("-q", "getstate", infra_id))
        assert list(states["vm_states"]) == ["0"]
    finally:
        im("destroy", infra_id, "-y", ok=False)
