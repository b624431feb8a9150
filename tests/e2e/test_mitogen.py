"""Large levels run with Mitogen's strategy in the runner (images/runner/build.sh installs it):
a real deployment with the threshold lowered to 2 nodes runs the play under mitogen_linear
and configures both nodes, with the callback's per-node results, variables, a template and a
handler working as under Ansible's own strategy."""

from __future__ import annotations

import os

import docker
import pytest

from orbis import config
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

MITOGEN_OWN = "/usr/local/lib/python3.11/dist-packages/ansible_mitogen/plugins/strategy"
# one local task under a strategy folder: the CPUs a command it runs may use, in /tmp/affinity
AFFINITY_PLAY = """- hosts: localhost
  gather_facts: false
  tasks:
    - shell: python3 -c 'import os; print(sorted(os.sched_getaffinity(0)))' > /tmp/affinity
"""
CPUS = "python3 -c 'import os; print(sorted(os.sched_getaffinity(0)))'"


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


def _affinity_under(box, strategy_folder: str) -> str:  # type: ignore[no-untyped-def]
    script = (f"cat > /tmp/play.yml <<'EOF'\n{AFFINITY_PLAY}EOF\n"
              f"ANSIBLE_STRATEGY_PLUGINS={strategy_folder} ANSIBLE_STRATEGY=mitogen_linear "
              "ansible-playbook -i localhost, -c local "
              "-e ansible_python_interpreter=/usr/bin/python3 /tmp/play.yml")  # fmt: skip
    status, out = box.exec_run(["bash", "-c", script])
    assert status == 0, out.decode()[-2000:]
    return container_read(box, ["cat", "/tmp/affinity"])[1].strip()


def test_the_runner_strategy_leaves_cpu_placement_to_the_kernel(engine_url: str) -> None:
    """Mitogen pins its processes by a plan for a big idle machine (on 2 cores: the controller,
    workers and SSH clients all on CPU 1); the runner's mitogen_linear does not pin."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: Mitogen pins nothing there, so there is nothing to tell apart")
    engine = docker.DockerClient(base_url=engine_url)
    image = engine.images.get(config.load().runner_image)
    folder = (image.labels or {}).get("orbis.runner.mitogen")
    if not folder:
        pytest.fail("the runner image has no Mitogen: rebuild it with `make image`")
    box = engine.containers.run(image.id, ["sleep", "infinity"], detach=True, network_mode="none")
    try:
        everywhere = container_read(box, ["bash", "-c", CPUS])[1].strip()
        assert _affinity_under(box, folder) == everywhere
        # the check can tell: Mitogen's own plugin pins the command's process
        assert _affinity_under(box, MITOGEN_OWN) != everywhere
    finally:
        box.remove(force=True)
