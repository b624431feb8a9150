"""Export and import carry an infrastructure's functions (issue 17), adopted only under the
rule nodes follow (docs/security.md §3): Alice importing her own export takes over her OSCAR
service (not sent again, deleted on destroy); Bob importing it, with other credentials or none,
gets it detached: never updated, run or deleted, and destroy only forgets it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from orbis.auth import identify
from orbis.lang import load_template
from orbis.service import OrbisService
from orbis.service.function_adoption import _hosted_refusal
from orbis.testing.services import sim_service
from orbis.testing.standins.oscar import Cluster, oscar_cluster

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - grycap_custom_types: https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml
topology_template:
  node_templates:
    plants:
      type: tosca.nodes.aisprint.FaaS.Function
      properties:
        name: plants
        memory: 256Mi
        image: docker://orbis-node:latest
        script: "#!/bin/sh\\necho hi"
        input: [{storage_provider: minio.default, path: plants-in}]
        output: [{storage_provider: minio.default, path: plants-out}]
  policies:
    - where:
        type: tosca.policies.indigo.Placement
        properties: {cloud_id: oscar_a}
        targets: [plants]
"""


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with oscar_cluster("oscar-a") as found:
        yield found


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[OrbisService]:
    async with sim_service(tmp_path) as svc:
        yield svc


def who(user: str, oscar: str = ""):  # type: ignore[no-untyped-def]
    return identify(f"id = im; type = InfrastructureManager; username = {user}; password = a\n"
                    + oscar)[0]  # fmt: skip


def oscar_line(cluster: Cluster, password: str) -> str:
    return (f"id = oscar_a; type = OSCAR; host = {cluster.url}; username = oscar; "
            f"password = {password}")


def writes(cluster: Cluster) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in cluster.requests if m in ("POST", "PUT", "DELETE")]


async def exported(service: OrbisService, cluster: Cluster) -> str:
    """Alice's infrastructure with a running service, exported with delete (forgotten here, its
    service left on the cluster)."""
    alice = who("alice", oscar_line(cluster, cluster.password))
    infra = await service.create(alice, TEMPLATE)
    assert await service.wait_reconciled(infra, timeout=60)
    assert set(cluster.services) == {"plants"}
    text = await service.export(alice, infra, delete=True)
    assert json.loads(text)["functions"][0]["service"] == "plants"
    return text


async def test_alice_importing_her_own_export_adopts_her_function(
    service: OrbisService, cluster: Cluster
) -> None:
    text = await exported(service, cluster)
    alice = who("alice", oscar_line(cluster, cluster.password))
    before = len(writes(cluster))
    infra = await service.import_(alice, text)
    row = service.store.functions(infra)[0]
    assert (row.name, row.state, row.service, row.endpoint) == (
        "plants", "running", "plants", cluster.url)
    await service.reconfigure(alice, infra)
    assert await service.wait_reconciled(infra, timeout=60)
    assert writes(cluster)[before:] == []  # adopted with its digest: not sent again
    await service.destroy(alice, infra)
    assert await service.wait_reconciled(infra, timeout=60)
    assert cluster.services == {}  # hers: deleted with the infrastructure


@pytest.mark.parametrize("line", ["wrong password", "no line"])
async def test_bob_importing_alices_export_can_touch_no_function(
    service: OrbisService, cluster: Cluster, line: str
) -> None:
    text = await exported(service, cluster)
    bob = who("bob", oscar_line(cluster, "not-the-password") if line == "wrong password" else "")
    before = len(writes(cluster))
    infra = await service.import_(bob, text)
    row = service.store.functions(infra)[0]
    assert row.state == "detached" and "function plants is detached" in row.error
    assert ("HTTP 401" if line == "wrong password" else "no oscar auth line") in row.error
    await service.reconfigure(bob, infra)
    assert await service.wait_reconciled(infra, timeout=60)
    assert service.store.functions(infra)[0].state == "detached"
    with pytest.raises(Exception, match="is detached"):
        await service.invoke(bob, infra, "plants", b"x")
    await service.destroy(bob, infra)
    assert await service.wait_reconciled(infra, timeout=60)
    assert writes(cluster)[before:] == []  # never updated, run nor deleted
    assert set(cluster.services) == {"plants"}  # Alice's service is still there


def test_a_hosted_function_is_adopted_only_with_its_oscar_machine_and_address() -> None:
    template = load_template("functions.yaml",
                             text=Path("examples/functions.yaml").read_text())  # fmt: skip
    host = template.components["oscar"].host
    machine = {"name": host, "vm_id": 0, "state": "configured", "public_ip": "192.0.2.7",
               "adoption": "adopted"}  # fmt: skip
    row = {"endpoint": "http://192.0.2.7"}
    assert _hosted_refusal(row, "oscar", [machine], template) == ""
    assert "is not yours" in _hosted_refusal(row, "oscar", [{**machine, "adoption": "detached"}],
                                              template)  # fmt: skip
    assert "its endpoint is not where" in _hosted_refusal(
        {"endpoint": "http://203.0.113.9"}, "oscar", [machine], template)
    assert "no OSCAR node" in _hosted_refusal(row, "elsewhere", [machine], template)


@pytest.mark.parametrize("machine", ["adopted", "detached"])
async def test_a_hosted_function_follows_its_oscar_machine(
    service: OrbisService, monkeypatch: pytest.MonkeyPatch, machine: str
) -> None:
    """examples/functions.yaml (the OSCAR node's dns_host pointing at a stand-in cluster): on
    import, the function goes with the OSCAR node's machine. The machine's own adoption (the
    owner mark) is tested with real containers in e2e/test_import_adoption.py; here it is
    given, to follow the function through the import."""
    text = Path("examples/functions.yaml").read_text()
    with oscar_cluster("oscar-h", password="oscar-example-pw") as hosted:
        text = text.replace('      default: ""\n', f"      default: {hosted.url}\n", 1)
        alice = who("alice")
        infra = await service.create(alice, text)
        assert await service.wait_reconciled(infra, timeout=60)
        assert [(f.site, f.state) for f in service.store.functions(infra)] == [
            ("node:oscar", "running")], service.store.functions(infra)[0].error
        exported = await service.export(alice, infra, delete=True)

        async def adoption(self: OrbisService, who: object, node: dict) -> str:  # type: ignore[type-arg]
            return machine if node.get("provider_id") else ""

        monkeypatch.setattr(OrbisService, "adoption", adoption)
        mine = await service.import_(alice, exported)
        row = service.store.functions(mine)[0]
        if machine == "adopted":
            assert row.state == "running" and row.endpoint == hosted.url
        else:
            assert row.state == "detached"
            assert "its OSCAR node's machine oscar_front is not yours" in row.error
        await service.destroy(alice, mine)
        assert await service.wait_reconciled(mine, timeout=60)
        assert set(hosted.services) == (set() if machine == "adopted" else {"upper"})


# -- IM's export form (service/im_functions.py) -----------------------------------------------


async def test_an_unhosted_function_goes_through_ims_form_as_a_vm_on_its_connector(
    service: OrbisService, cluster: Cluster
) -> None:
    alice = who("alice", oscar_line(cluster, cluster.password))
    infra = await service.create(alice, TEMPLATE)
    assert await service.wait_reconciled(infra, timeout=60)
    doc = json.loads(await service.export(alice, infra, delete=True, form="im"))
    [vm] = [json.loads(v) for v in doc["vm_list"]]
    cloud = json.loads(vm["cloud"])
    assert (vm["id"], vm["state"], cloud["id"], cloud["type"]) == (
        "plants", "running", "oscar_a", "OSCAR")
    assert "system plants (" in vm["info"] and "name = 'plants'" in vm["info"]
    assert "script = '#!/bin/sh\necho hi'" in vm["info"]
    assert cluster.password not in json.dumps(doc)  # an auth line's secret never travels

    # Bob (another password) gets it detached: nothing is sent to the cluster
    bob = who("bob", oscar_line(cluster, "not-the-password"))
    before = len(writes(cluster))
    theirs = await service.import_(bob, json.dumps(doc))
    [row] = service.store.functions(theirs)
    assert row.state == "detached" and "HTTP 401" in row.error
    await service.destroy(bob, theirs)
    assert await service.wait_reconciled(theirs, timeout=60)
    assert writes(cluster)[before:] == [] and set(cluster.services) == {"plants"}

    # Alice adopts it (her line reads it) and it is deleted with her infrastructure
    mine = await service.import_(alice, json.dumps(doc))
    [row] = service.store.functions(mine)
    assert (row.name, row.state, row.site, row.service, row.endpoint) == (
        "plants", "running", "oscar_a", "plants", cluster.url)
    before = len(writes(cluster))
    await service.reconfigure(alice, mine)
    assert await service.wait_reconciled(mine, timeout=60)
    # hers: brought up to date (IM's form carries no digest of what was sent)
    assert writes(cluster)[before:] == [("PUT", "/system/services")]
    await service.destroy(alice, mine)
    assert await service.wait_reconciled(mine, timeout=60)
    assert cluster.services == {}


@pytest.mark.parametrize("machine", ["adopted", "detached"])
async def test_a_hosted_function_comes_back_from_ims_form_with_its_oscar_machine(
    service: OrbisService, monkeypatch: pytest.MonkeyPatch, machine: str
) -> None:
    """IM keeps a hosted function in its TOSCA only (no VM): the import reads it from the
    template, at its OSCAR node's imported machine, adopted or detached with that machine."""
    text = Path("examples/functions.yaml").read_text()
    with oscar_cluster("oscar-h", password="oscar-example-pw") as hosted:
        text = text.replace('      default: ""\n', f"      default: {hosted.url}\n", 1)
        alice = who("alice")
        infra = await service.create(alice, text)
        assert await service.wait_reconciled(infra, timeout=60)
        doc = json.loads(await service.export(alice, infra, delete=True, form="im"))
        assert [json.loads(v)["cloud"] for v in doc["vm_list"]] != []  # the OSCAR machine
        assert all(json.loads(json.loads(v)["cloud"])["type"] != "OSCAR"
                   for v in doc["vm_list"])  # fmt: skip

        async def adoption(self: OrbisService, who: object, node: dict) -> str:  # type: ignore[type-arg]
            return machine if node.get("provider_id") else ""

        monkeypatch.setattr(OrbisService, "adoption", adoption)
        before = len(writes(hosted))
        mine = await service.import_(alice, json.dumps(doc))
        [row] = service.store.functions(mine)
        assert (row.site, row.service, row.endpoint) == ("node:oscar", "upper", hosted.url)
        if machine == "adopted":
            assert row.state == "running"
        else:
            assert row.state == "detached" and "is not yours" in row.error
        await service.destroy(alice, mine)
        assert await service.wait_reconciled(mine, timeout=60)
        if machine == "adopted":
            assert hosted.services == {}
        else:
            assert set(hosted.services) == {"upper"} and writes(hosted)[before:] == []
