"""Nodes are named as IM names them, and recipes see IM's variables: a node's host name comes
from its dns_name (`#N#` is the VM number), every node's /etc/hosts lists the others, and the
IM_NODE_* / IM_MASTER_* facts are set. An IM RADL recipe that prints them runs unchanged."""

from __future__ import annotations

import docker
import pytest

from orbis.auth import identify
from orbis.providers.base import LABEL_INFRASTRUCTURE
from orbis.testing.engine_read import container_read

pytestmark = [pytest.mark.e2e]

FACTS = ("{{ IM_NODE_HOSTNAME }} {{ IM_NODE_FQDN }} {{ IM_NODE_NUM }} {{ IM_MASTER_FQDN }} "
         "{{ IM_NODE_NET_0_IP }} {{ IM_NODE_CLOUD_TYPE }}")  # fmt: skip
RADL = f"""network priv ()
system head (
  net_interface.0.connection = 'priv' and net_interface.0.dns_name = 'head.cluster.test'
)
system wk (
  net_interface.0.connection = 'priv' and net_interface.0.dns_name = 'wk-#N#'
)
configure head (
@begin
- tasks:
  - copy: dest=/root/facts content="{FACTS}"
@end
)
configure wk (
@begin
- tasks:
  - copy: dest=/root/facts content="{FACTS}"
  - shell: getent hosts head.cluster.test > /root/head
@end
)
contextualize (
  system head configure head step 1
  system wk configure wk step 2
)
deploy head 1
deploy wk 1
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"


async def test_host_names_etc_hosts_and_im_variables(engine_url, local_service):
    svc = local_service
    who = identify(ALICE)[0]
    infra = None
    try:
        infra = await svc.create(who, RADL)
        assert await svc.wait_reconciled(infra, timeout=300)
        nodes = {n.name: n for n in svc.store.nodes(infra)}
        head, wk = nodes["head"], nodes["wk"]
        assert (head.state, wk.state) == ("configured", "configured"), wk.log + head.log
        engine = docker.DockerClient(base_url=engine_url)

        def run(vm_id: int, *command: str) -> str:
            (container,) = engine.containers.list(
                filters={"label": [f"{LABEL_INFRASTRUCTURE}={infra}", f"orbis.vm_id={vm_id}"]}
            )
            return container_read(container, list(command))[1]  # reads only

        assert run(head.vm_id, "cat", "/root/facts") == (
            f"head head.cluster.test 0 head.cluster.test {head.private_ip} Local"
        )
        assert run(wk.vm_id, "cat", "/root/facts") == (
            f"wk-1 wk-1.localdomain 1 head.cluster.test {wk.private_ip} Local"
        )
        assert run(wk.vm_id, "hostname").strip() == "wk-1"
        assert run(wk.vm_id, "cat", "/root/head").split() == [
            head.private_ip,
            "head.cluster.test",
            "head",
        ]
        hosts = run(head.vm_id, "cat", "/etc/hosts")
        assert f"{wk.private_ip} wk-1.localdomain wk-1" in hosts
        assert hosts.count("# BEGIN Orbis") == 1
        # the SSH wait's login also named the node: one login before Ansible's (two before)
        for node in (head, wk):
            logins = run(node.vm_id, "journalctl", "-u", "ssh", "--no-pager", "-o", "cat")
            assert logins.count("Accepted publickey") <= 2, logins
        await svc.reconfigure(who, infra)  # a second run rewrites the block, never adds one
        assert await svc.wait_reconciled(infra, timeout=300)
        again = run(head.vm_id, "cat", "/etc/hosts")
        assert again.count("# BEGIN Orbis") == 1 and f"{wk.private_ip} wk-1" in again
    finally:
        if infra:
            await svc.destroy(who, infra)
