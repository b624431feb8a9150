"""Large levels run with Mitogen's strategy in the runner (images/runner/build.sh installs it):
a real deployment with the threshold lowered to 2 nodes runs the play under mitogen_linear
and configures both nodes, with the callback's per-node results, variables, a template and a
handler working as under Ansible's own strategy."""

from __future__ import annotations

import docker
import pytest

from orbis.auth import identify
from orbis.providers.base import LABEL_INFRASTRUCTURE
from orbis.testing.engine_read import container_read

pytestmark = [pytest.mark.e2e]

RADL = """network priv ()
system wk (
  net_interface.0.connection = 'priv'
)
configure wk (
@begin
- vars:
    greeting: hello
  tasks:
  - copy:
      dest: /root/greeting
      content: "{{ greeting }} from {{ IM_NODE_NUM }} of {{ groups['wk'] | length }}\\n"
    notify: mark
  - command: cat /root/greeting
    register: said
  - assert:
      that: said.stdout.startswith('hello from')
  handlers:
  - name: mark
    file: path=/root/handled state=touch
@end
)
contextualize (
  system wk configure wk step 1
)
deploy wk 2
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"


async def test_a_level_runs_under_mitogen(engine_url, local_service, monkeypatch):
    engine = docker.DockerClient(base_url=engine_url)
    image = engine.images.get(local_service.deployer.runners.settings.runner_image)
    if not (image.labels or {}).get("orbis.runner.mitogen"):
        pytest.fail("the runner image has no Mitogen: rebuild it with `make image`")
    monkeypatch.setenv("ORBIS_MITOGEN_MIN_HOSTS", "2")
    svc = local_service
    who = identify(ALICE)[0]
    infra = None
    try:
        infra = await svc.create(who, RADL)
        assert await svc.wait_reconciled(infra, timeout=300)
        nodes = svc.store.nodes(infra)
        log = svc.store.get(infra).log
        assert [n.state for n in nodes] == ["configured", "configured"], log
        assert "(strategy mitogen_linear, 5 forks)" in log
        for node in nodes:
            assert "TASK [assert] ok" in node.log, node.log
            (container,) = engine.containers.list(filters={"label": [
                f"{LABEL_INFRASTRUCTURE}={infra}", f"orbis.vm_id={node.vm_id}"]})  # fmt: skip
            said = container_read(container, ["cat", "/root/greeting", "/root/handled"])[1]
            assert said == f"hello from {node.vm_id} of 2\n"
    finally:
        if infra:
            await svc.destroy(who, infra)
