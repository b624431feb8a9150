"""Hostile recipes on real containers and real Ansible: nothing a template runs may touch the
service host. Each attack aims at its own host path under /tmp (unique per test run) and the
test asserts that path does not exist on the host afterwards; where the attack runs on the
controller, a last task lists /tmp *on the controller* (the runner container, whose /tmp is a
tmpfs), proving the play did run, there. Independent attacks share one infrastructure (three
nodes: attacks that make a node fail get a node of their own)."""

from __future__ import annotations

import asyncio
import io
import tarfile
import uuid
from pathlib import Path

import docker
import pytest

from orbis.auth import identify
from orbis.configure import galaxy
from orbis.providers.base import LABEL_INFRASTRUCTURE, LABEL_RUNNER
from orbis.providers.local import LocalProvider, network_name
from orbis.runner.options import PATHS
from orbis.runner.pool import RunnerPool
from orbis.runner.quota import WorkQuota, run_within_quota
from orbis.testing.engine_read import container_read
from orbis.testing.hostile_http import hostile_server

pytestmark = [pytest.mark.e2e]
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"
SECRET = "orbis-planted-secret-4f1c"  # in the service's environment and in host files

ATTACKS = ["delegate", "local_action", "pipe", "connection_local", "run_once_become", "fetch",
           "role_plugin"]  # fmt: skip

TOSCA = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - grycap_custom_types: https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml
topology_template:
  node_templates:
    n:
      type: tosca.nodes.Compute
      interfaces:
        Standard:
          configure:
            implementation: |
              - hosts: all
                gather_facts: false
                tasks:
                  - name: delegate_to localhost
                    copy: {content: x, dest: "@P@delegate"}
                    delegate_to: localhost
                    ignore_errors: true
                  - name: local_action
                    local_action: {module: copy, content: x, dest: "@P@local_action"}
                    ignore_errors: true
                  - name: lookup pipe
                    debug: {msg: "{{ lookup('pipe', 'touch @P@pipe && echo piped') }}"}
                    ignore_errors: true
                  - name: run_once, delegate_to and become
                    copy: {content: x, dest: "@P@run_once_become"}
                    run_once: true
                    delegate_to: localhost
                    become: true
                    ignore_errors: true
                  - name: fetch to an absolute path
                    fetch: {src: /etc/hostname, dest: "@P@fetch", flat: true}
                    ignore_errors: true
                  - name: include_vars of a host file
                    include_vars: {file: "@P@hostvars.yml"}
                    ignore_errors: true
                  - name: file and template lookups of host files, env lookups
                    copy:
                      dest: /root/looked
                      content: |
                        vars={{ stolen | default('none') }}
                        file={{ lookup('file', '@P@hostfile', errors='ignore') }}
                        template={{ lookup('template', '@P@hostfile', errors='ignore') }}
                        env={{ lookup('env', 'ORBIS_SECRET_KEY') }}
                        aws={{ lookup('env', 'AWS_SECRET_ACCESS_KEY') }}
                  - file: {path: "{{ playbook_dir }}/roles/evil/{{ item }}", state: directory}
                    delegate_to: localhost
                    loop: [tasks, action_plugins]
                    ignore_errors: true
                  - name: a role with an action plugin, written where roles are looked for
                    copy: {dest: "{{ playbook_dir }}/roles/evil/{{ item.path }}",
                           content: "{{ item.text }}"}
                    delegate_to: localhost
                    loop:
                      - {path: tasks/main.yml, text: "- evil_write: {path: '@P@role_plugin'}\\n"}
                      - path: action_plugins/evil_write.py
                        text: |
                          from ansible.plugins.action import ActionBase
                          class ActionModule(ActionBase):
                              def run(self, tmp=None, task_vars=None):
                                  open(self._task.args['path'], 'w').write('pwned')
                                  return {'changed': True}
                    ignore_errors: true
                  - block:
                      - include_role: {name: evil}
                    rescue:
                      - debug: {msg: "evil could not be included"}
              - hosts: all
                gather_facts: false
                vars: {ansible_connection: local}
                tasks:
                  - copy: {content: x, dest: "@P@connection_local"}
              - hosts: localhost
                gather_facts: false
                tasks:
                  - copy: {content: x, dest: "@P@hosts_localhost"}
              - hosts: all
                gather_facts: false
                tasks:
                  - name: census of the controller's /tmp
                    shell: ls -1 /tmp | grep '^@NAME@' || true
                    delegate_to: localhost
    zg:  # last in the level's playbook: a missing role ends Ansible's run (ansible-core 2.19)
      type: tosca.nodes.Compute
      artifacts:
        evil_role:
          file: "@P@role.tar.gz,,galaxyevil"
          type: tosca.artifacts.AnsibleGalaxy.role
      interfaces:
        Standard:
          configure:
            implementation: |
              - hosts: all
                gather_facts: false
                tasks:
                  - block:  # a missing role is fatal even with ignore_errors
                      - include_role: {name: galaxyevil}
                    rescue:
                      - debug: {msg: "galaxyevil could not be included"}
    p:
      type: tosca.nodes.Compute
      interfaces:
        Standard:
          configure:
            implementation: |
              - hosts: all
                gather_facts: false
                tasks:
                  - ping:
            inputs:
              ansible_ssh_common_args: "-o ProxyCommand='touch @P@proxy; nc %h %p'"
"""

RADL = """network priv ()
system r (net_interface.0.connection = 'priv')
configure r (
@begin
- hosts: all
  gather_facts: false
  tasks:
    - copy: {content: x, dest: "@P@radl_delegate"}
      delegate_to: localhost
    - debug: {msg: "{{ lookup('pipe', 'touch @P@radl_pipe && echo piped') }}"}
    - shell: ls -1 /tmp | grep '^@NAME@' || true
      delegate_to: localhost
@end
)
deploy r 1
"""


def galaxy_role_archive(path: Path, marker: str) -> None:
    """A Galaxy role archive whose action plugin writes `marker` on the controller."""
    files = {
        "galaxyevil/meta/main.yml": "galaxy_info: {author: x, description: x}\n",
        "galaxyevil/tasks/main.yml": f"- evil_write: {{path: '{marker}'}}\n",
        "galaxyevil/action_plugins/evil_write.py": (
            "from ansible.plugins.action import ActionBase\n"
            "class ActionModule(ActionBase):\n"
            "    def run(self, tmp=None, task_vars=None):\n"
            "        open(self._task.args['path'], 'w').write('pwned')\n"
            "        return {'changed': True}\n"
        ),
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))


@pytest.fixture
def hostile(monkeypatch):
    """A unique /tmp prefix; host files only the host has (with the planted secret); the
    secret in the service's environment. Removes what it made (and anything leaked)."""
    name = f"orbis-hostile-{uuid.uuid4().hex[:10]}-"
    prefix = f"/tmp/{name}"
    Path(prefix + "hostvars.yml").write_text(f"stolen: {SECRET}\n")
    Path(prefix + "hostfile").write_text(f"{SECRET}\n")
    galaxy_role_archive(Path(prefix + "role.tar.gz"), prefix + "galaxy_plugin")
    monkeypatch.setenv("ORBIS_SECRET_KEY", SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    yield name, prefix
    for path in Path("/tmp").glob(name + "*"):
        path.unlink()


def node_file(engine_url: str, infra: str, vm_id: int, path: str) -> str:
    engine = docker.DockerClient(base_url=engine_url)
    (container,) = engine.containers.list(
        filters={"label": [f"{LABEL_INFRASTRUCTURE}={infra}", f"orbis.vm_id={vm_id}"]}
    )
    return container_read(container, ["cat", path])[1]


async def test_tosca_hostile_plays_never_touch_the_host(engine_url, local_service, hostile):
    name, prefix = hostile
    svc = local_service
    who = identify(ALICE)[0]
    infra = None
    try:
        infra = await svc.create(who, TOSCA.replace("@P@", prefix).replace("@NAME@", name))
        assert await svc.wait_reconciled(infra, timeout=300)
        nodes = {n.name: n for n in svc.store.nodes(infra)}
        n, g, p = nodes["n"], nodes["zg"], nodes["p"]
        host_left = sorted(str(x) for x in Path("/tmp").glob(name + "*")
                           if not x.name.endswith(("hostvars.yml", "hostfile", "role.tar.gz")))
        assert host_left == [], "hostile plays wrote on the service host"
        # the attacks on the controller ran, in the runner (its /tmp, listed by the census)
        assert n.state == "configured", n.log
        assert "in the infrastructure's runner container" in svc.store.get(infra).log
        assert "census of the controller" in n.log, n.log
        census = n.log[n.log.index("census of the controller"):]
        for attack in ATTACKS:
            assert f"{name}{attack}" in census, f"{attack} did not run on the controller"
        # a hosts: localhost play is aimed at the step's nodes: it ran on the node
        assert node_file(engine_url, infra, n.vm_id, prefix + "hosts_localhost") == "x"
        # host files and the service's environment never reach a play
        looked = node_file(engine_url, infra, n.vm_id, "/root/looked")
        assert "vars=none" in looked and "env=\n" in looked and "aws=\n" in looked, looked
        assert SECRET not in looked and SECRET not in n.log
        # connection variables in inputs are refused, naming the variable
        assert "input 'ansible_ssh_common_args' is refused" in p.log, p.log
        assert p.state != "configured"
        # a Galaxy role from a host path cannot be installed in the runner: its plugin never
        # runs anywhere (the install is reported on the node, the role is not found)
        assert "role install failed" in g.log and "galaxyevil could not be included" in g.log, g.log
    finally:
        if infra:
            await svc.destroy(who, infra)


async def test_radl_hostile_configure_never_touches_the_host(engine_url, local_service, hostile):
    name, prefix = hostile
    svc = local_service
    who = identify(ALICE)[0]
    infra = None
    try:
        infra = await svc.create(who, RADL.replace("@P@", prefix).replace("@NAME@", name),
                                 "hostile.radl")  # fmt: skip
        assert await svc.wait_reconciled(infra, timeout=300)
        (r,) = svc.store.nodes(infra)
        assert r.state == "configured", r.log
        for attack in ("radl_delegate", "radl_pipe"):
            assert not Path(prefix + attack).exists(), f"{attack} wrote on the service host"
            assert f"{name}{attack}" in r.log, f"{attack} did not run on the controller"
    finally:
        if infra:
            await svc.destroy(who, infra)


async def test_the_real_runner_container_is_confined(engine_url, tmp_path, monkeypatch):
    """The runner the pool starts, as the engine reports it: HostConfig, env, mounts,
    network; never listed as a node; removed by the infrastructure's cleanup."""
    monkeypatch.setenv("ORBIS_SECRET_KEY", SECRET)
    provider = LocalProvider(base_url=engine_url)
    provider.installation = f"test-{uuid.uuid4().hex[:8]}"
    pool = RunnerPool(provider)
    infra = str(uuid.uuid4())
    key = tmp_path / "id_ed25519"
    key.write_text("key")
    try:
        runner = await pool.get(infra, tmp_path / "runner", key)
        engine = docker.DockerClient(base_url=engine_url)
        attrs = engine.api.inspect_container(runner.container_id)
        host = attrs["HostConfig"]
        assert host["Privileged"] is False
        assert host["ReadonlyRootfs"] is True
        assert any("no-new-privileges" in opt for opt in host.get("SecurityOpt") or [])
        # Docker keeps "ALL"; podman lists the default capabilities it dropped
        dropped = {c.upper().removeprefix("CAP_") for c in host.get("CapDrop") or []}
        assert "ALL" in dropped or dropped >= {"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL",
                                               "NET_RAW", "SETGID", "SETUID"}, dropped
        assert not host.get("CapAdd")
        assert host["PidsLimit"] == 1024 and host["Memory"] == 2048 * 2**20
        assert host["NanoCpus"] == 2 * 10**9
        assert set(host.get("Tmpfs") or {}) >= {"/tmp", str(PATHS.home)}
        mounts = {m["Destination"]: (m["Source"], m["RW"]) for m in attrs["Mounts"]}
        assert mounts[str(PATHS.workspace)] == (str(tmp_path / "runner"), True)
        assert mounts[str(PATHS.key_file)] == (str(key), False)
        assert all(not rw for dest, (_src, rw) in mounts.items() if dest != str(PATHS.workspace))
        assert set(attrs["NetworkSettings"]["Networks"]) == {network_name(infra)}
        env = attrs["Config"]["Env"]
        assert not any(SECRET in e or e.startswith(("ORBIS_", "AWS_")) for e in env), env
        # inside: no capability at all, and the root file system is read-only
        code, out = await runner.run(["sh", "-c", "grep CapEff /proc/self/status; touch /x"],
                                     {}, timeout=30, tag="t")  # fmt: skip
        assert "0000000000000000" in out and code != 0 and "Read-only" in out, out
        assert attrs["Config"]["Labels"][LABEL_RUNNER] == "true"
        assert all(m.infrastructure_id != infra for m in provider.list_owned())
        assert infra in provider.owned_infrastructures()  # the orphan sweep finds it
        provider.cleanup(infra)
        assert not engine.containers.list(all=True, filters={"name": f"orbis-{infra}-runner"})
    finally:
        await pool.close()
        provider.cleanup(infra)


async def test_galaxy_in_the_real_runner_goes_through_the_address_rule(engine_url, tmp_path,
                                                                       monkeypatch):  # fmt: skip
    """In the real container: a role served on the service host's 127.0.0.1 (which the
    container cannot reach itself) installs only through the service's proxy once the operator
    lists it; a role at the metadata service is refused naming the rule."""
    provider = LocalProvider(base_url=engine_url)
    provider.installation = f"test-{uuid.uuid4().hex[:8]}"
    pool = RunnerPool(provider)
    infra = str(uuid.uuid4())
    key = tmp_path / "id_ed25519"
    key.write_text("key")
    galaxy_role_archive(tmp_path / "role.tar.gz", "/nowhere")
    try:
        with hostile_server() as server:
            server.files["role.tar.gz"] = (tmp_path / "role.tar.gz").read_bytes()
            monkeypatch.setenv("ORBIS_FETCH_ALLOW", f"127.0.0.1:{server.port}")
            runner = await pool.get(infra, tmp_path / "runner", key)
            await galaxy.install(runner, [f"{server.url}/files/role.tar.gz,,galaxyevil"], [])
            assert (tmp_path / "runner" / "roles" / "galaxyevil" / "meta").is_dir()
            assert [p for p, _ in server.hits] == ["/files/role.tar.gz"]
            with pytest.raises(galaxy.GalaxyError, match=r"169\.254\.169\.254 is the cloud"):
                await galaxy.install(runner, ["http://169.254.169.254/latest/x.tar.gz,,m"], [])
    finally:
        await pool.close()
        provider.cleanup(infra)


async def test_the_real_runner_is_stopped_past_its_folder_quota(engine_url, tmp_path):
    """A command in the real container fills the runner folder: past the quota it is stopped
    (the container removed, so nothing goes on writing) and the refusal names the limit."""
    provider = LocalProvider(base_url=engine_url)
    provider.installation = f"test-{uuid.uuid4().hex[:8]}"
    pool = RunnerPool(provider)
    infra = str(uuid.uuid4())
    key = tmp_path / "id_ed25519"
    key.write_text("key")
    fill = ("for i in $(seq 400); do dd if=/dev/zero of=f$i bs=1M count=1 conv=fsync "
            "2>/dev/null; sleep 0.02; done")  # fmt: skip
    try:
        runner = await pool.get(infra, tmp_path / "runner", key)
        code, output, refusal = await run_within_quota(
            runner, ["sh", "-c", fill], {}, timeout=120, tag="fill",
            quota=WorkQuota(max_bytes=16 * 2**20, interval=0.2),
        )  # fmt: skip
        assert code != 0 and refusal is not None and "ORBIS_RUNNER_WORK_MB" in output
        assert not await asyncio.to_thread(runner.alive)  # type: ignore[attr-defined]
        files = len(list((tmp_path / "runner").glob("f*")))
        assert 16 <= files < 400
    finally:
        await pool.close()
        provider.cleanup(infra)
