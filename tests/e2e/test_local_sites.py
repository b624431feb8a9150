"""Sites of the local back-end (issue 13): two "clouds" on one machine.

One infrastructure with a public front-end and a private worker on each of sites A and B
(auth lines `type = LocalSite`, sites chosen by `disk.0.image.url = 'local://SITE'`). Checked on
one deployment: each site's private network is its own (a node of site A reaches its site's
nodes and the public addresses, never a private address of site B); the private workers are
reached through an SSH jump via the public node of their own site, by the deployer, by Ansible
in the runner (which sits on the public network only) and by `orbis ssh`'s way (run_command).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import docker
import pytest
import pytest_asyncio

from orbis.auth import identify
from orbis.configure.ssh import run_command
from orbis.providers.base import LABEL_INFRASTRUCTURE, LABEL_VM_ID
from orbis.providers.local_sites import LABEL_SITE
from orbis.service import OrbisService
from orbis.testing.engine_read import container_read

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

AUTH = ("id = im; type = InfrastructureManager; username = alice; password = a\n"
        "id = siteA; type = LocalSite\nid = siteB; type = LocalSite")  # fmt: skip
RADL = """network public (outbound = 'yes')
network priv ()
system front (net_interface.0.connection = 'public' and net_interface.1.connection = 'priv'
              and disk.0.image.url = 'local://siteA')
system wa (net_interface.0.connection = 'priv' and disk.0.image.url = 'local://siteA')
system gate (net_interface.0.connection = 'public' and net_interface.1.connection = 'priv'
             and disk.0.image.url = 'local://siteB')
system wb (net_interface.0.connection = 'priv' and disk.0.image.url = 'local://siteB')
configure wb (
@begin
- tasks:
  - name: where the SSH session comes from
    ansible.builtin.shell: echo "$SSH_CONNECTION" > /root/via
@end
)
deploy front 1
deploy wa 1
deploy gate 1
deploy wb 1
"""
# exit 0 when a TCP connection to port 22 opens within 3 s
PROBE = "timeout 3 bash -c '</dev/tcp/{}/22' && echo open || echo closed"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def deployed(engine_url: str, tmp_path_factory: pytest.TempPathFactory
                   ) -> AsyncIterator[tuple[OrbisService, str, dict]]:  # fmt: skip
    from cryptography.fernet import Fernet

    from orbis.providers.local import LocalProvider
    from orbis.secrets import Sealer
    from orbis.store.repository import Store

    tmp = tmp_path_factory.mktemp("sites")
    svc = OrbisService(Store(f"sqlite:///{tmp / 'orbis.db'}"), LocalProvider(base_url=engine_url),
                       tmp / "work")  # fmt: skip
    svc.configure_access(Sealer(Fernet.generate_key()))  # keeps the cloud (site) lines
    await svc.resume()
    who = identify(AUTH)[0]
    infra = await svc.create(who, RADL)
    try:
        assert await svc.wait_reconciled(infra, timeout=400)
        nodes = {n.name: n for n in svc.store.nodes(infra)}
        yield svc, infra, nodes
    finally:
        await svc.destroy(who, infra)
        await svc.shutdown()


def _container(engine_url: str, infra: str, vm_id: int):  # type: ignore[no-untyped-def]
    engine = docker.DockerClient(base_url=engine_url)
    (found,) = engine.containers.list(
        filters={"label": [f"{LABEL_INFRASTRUCTURE}={infra}", f"{LABEL_VM_ID}={vm_id}"]}
    )
    return found


def _reach(container, address: str) -> str:  # type: ignore[no-untyped-def]
    # a probe only reads, so it is asked again when the exec API hands back nothing
    return container_read(container, ["bash", "-c", PROBE.format(address)])[1].strip()


async def test_nodes_land_on_their_sites_and_private_ones_are_reached_by_jump(
    engine_url: str, deployed: tuple[OrbisService, str, dict]
) -> None:
    svc, infra, nodes = deployed
    assert {n: r.state for n, r in nodes.items()} == dict.fromkeys(nodes, "configured"), {
        n: r.log[-800:] for n, r in nodes.items()}
    assert {n: r.site for n, r in nodes.items()} == {
        "front": "siteA", "wa": "siteA", "gate": "siteB", "wb": "siteB"}
    for name, site in (("front", "siteA"), ("wb", "siteB")):
        assert _container(engine_url, infra, nodes[name].vm_id).labels[LABEL_SITE] == site
    front, wa, gate, wb = (nodes[n] for n in ("front", "wa", "gate", "wb"))
    assert front.public_ip and gate.public_ip and not wa.public_ip and not wb.public_ip
    assert front.public_ip != front.private_ip  # public network vs the site's own
    # each private node goes through the public node of its own site
    assert wa.jump == f"root@{front.public_ip}:22"
    assert wb.jump == f"root@{gate.public_ip}:22"
    assert f"through root@{gate.public_ip}:22" in wb.log
    # Ansible (in the runner, on the public network) reached wb through gate
    via = container_read(_container(engine_url, infra, wb.vm_id), ["cat", "/root/via"])[1]
    assert via.split() and via.split()[0] == gate.private_ip, via
    # as `orbis ssh` does: the infrastructure's key and the recorded jump
    status, output = await run_command(wb.private_ip, "hostname", user="root",
                                       private_key=svc.private_key(svc.store.get(infra)),
                                       jump=wb.jump)  # fmt: skip
    assert status == 0, output


def test_a_site_cannot_reach_the_private_addresses_of_another(
    engine_url: str, deployed: tuple[OrbisService, str, dict]
) -> None:
    _, infra, nodes = deployed
    front, wa, gate, wb = (nodes[n] for n in ("front", "wa", "gate", "wb"))
    from_wa = _container(engine_url, infra, wa.vm_id)
    from_front = _container(engine_url, infra, front.vm_id)
    assert _reach(from_wa, front.private_ip) == "open"  # own site: the probe works
    assert _reach(from_front, gate.public_ip) == "open"  # the "internet" between sites
    assert _reach(from_wa, wb.private_ip) == "closed"
    assert _reach(from_wa, gate.private_ip) == "closed"
    assert _reach(from_front, wb.private_ip) == "closed"
    assert _reach(from_wa, gate.public_ip) == "closed"  # a private node has no way out there
