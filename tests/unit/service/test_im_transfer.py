"""IM's export form, both ways (issue 12 §3): an IM user's running infrastructure moves to
Orbis, and an Orbis infrastructure is written in IM's form and read back.

The documents are written from IM's public behaviour (orbis.testing.im_export). Nodes on the
server's own back-end (IM's Docker connector) and on clouds the importer has no line for come
in detached; actions on them are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from orbis.auth import identify
from orbis.providers.sim import SimProvider
from orbis.secrets import Sealer
from orbis.service import Detached, InvalidRequest, OrbisService, QuotaExceeded
from orbis.store.repository import Store
from orbis.testing.im_export import RADL, TOSCA, cloud, infrastructure, rsa_key, vm, vm_info

ALICE = "type = InfrastructureManager; username = alice; password = a"


def who():  # type: ignore[no-untyped-def]
    return identify(ALICE)[0]


@pytest.fixture
async def svc(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path / 'orbis.db'}")
    provider = SimProvider(tmp_path / "cloud.db", latency=0.01, config_seconds=0.01)
    service = OrbisService(store, provider, tmp_path / "work", holder="test:1")
    service.configure_access(Sealer(Fernet.generate_key()))
    await service.resume()
    yield service
    await service.shutdown()


def tosca_export(key: str) -> str:
    """Front on IM's Docker connector (the server's own back-end here), wn on OpenStack."""
    return infrastructure([
        vm(0, "front", "configured", "3f2a9c0d1e4b", cloud("dock", "Docker"),
           vm_info("front", "configured", key, public="172.17.0.5", private="10.0.0.5",
                   ssh_port=2222)),
        vm(1, "wn", "unconfigured", "8d0b6f52-ae1c-4f57-9d0a-3c2f7a1b9e10",
           cloud("ost", "OpenStack", "keystone.example.org"),
           vm_info("wn", "unconfigured", key, public=None, private="10.0.0.6")),
    ], radl=RADL, tosca=TOSCA)  # fmt: skip


def radl_export(key: str) -> str:
    """Both VMs on OpenNebula (`deploy ... one`)."""
    one = cloud("one", "OpenNebula", "one.example.org")
    return infrastructure([
        vm(0, "front", "running", "417", one,
           vm_info("front", "running", key, public="193.0.2.10", private="192.168.1.10")),
        vm(1, "wn", "stopped", "418", one,
           vm_info("wn", "stopped", key, public=None, private="192.168.1.11")),
    ], radl=RADL)  # fmt: skip


async def test_a_tosca_export_of_im_imports_with_its_nodes(svc: OrbisService) -> None:
    key = rsa_key()
    infra = await svc.import_(who(), tosca_export(key))
    assert infra != "0d5a7e3c-1b2a-11ef-9d2a-0242ac120002"  # never the id in the data
    row = svc.store.get(infra)
    assert row is not None and row.template_format == "tosca" and row.phase == "done"
    assert "tosca.nodes.indigo.Compute" in row.template and set(svc.template(row).computes) == {
        "front", "wn"}
    nodes = {n.vm_id: n for n in svc.store.nodes(infra)}
    assert sorted(nodes) == [0, 1]
    front, wn = nodes[0], nodes[1]
    assert (front.name, front.state, front.public_ip, front.private_ip) == (
        "front", "configured", "172.17.0.5", "10.0.0.5")
    assert (front.provider_id, front.site, front.ssh_user, front.ssh_port) == (
        "3f2a9c0d1e4b", None, "cloudadm", 2222)
    assert (wn.name, wn.state, wn.public_ip, wn.private_ip, wn.site) == (
        "wn", "unconfigured", None, "10.0.0.6", "ost")
    assert wn.provider_id == "8d0b6f52-ae1c-4f57-9d0a-3c2f7a1b9e10"
    assert wn.jump is None  # its front is on another site
    # neither the local container nor the OpenStack server can be shown to be Alice's
    assert front.adoption == wn.adoption == "detached"
    assert "VM 0 is detached" in front.log and "configured by IM" in front.log
    assert svc.state(who(), infra).vm_states == {"0": "configured", "1": "unconfigured"}
    # the key came with the VMs: usable, and sealed at rest
    assert svc.private_key(row) == key and key not in row.ssh_private_key
    assert row.ssh_public_key.startswith("ssh-rsa ")
    # IM's owners (with their password) were not taken over: Alice owns it
    assert [o.name for o in svc.store.owners(infra)] == ["alice"]
    assert "impass" not in json.dumps([row.log, row.template, row.credentials])
    assert "owners (field 'auth') are not carried over" in row.log
    assert svc.outputs(who(), infra) == {"front_ip": "172.17.0.5"}
    assert row.next_vm_id == 2


async def test_a_radl_export_of_im_imports_with_its_nodes(svc: OrbisService) -> None:
    infra = await svc.import_(who(), radl_export(rsa_key()))
    row = svc.store.get(infra)
    assert row is not None and row.template_format == "radl"
    assert "deploy wn 1 one" in row.template
    nodes = {n.vm_id: n for n in svc.store.nodes(infra)}
    assert [(n.name, n.state, n.public_ip, n.private_ip, n.provider_id, n.site)
            for n in nodes.values()] == [
        ("front", "running", "193.0.2.10", "192.168.1.10", "417", "one"),
        ("wn", "stopped", None, "192.168.1.11", "418", "one"),
    ]  # fmt: skip
    assert nodes[1].desired == "stopped"
    assert nodes[1].jump == "cloudadm@193.0.2.10:22"  # reached through its front, as IM does
    assert all(n.adoption == "detached" for n in nodes.values())


async def test_every_action_on_a_node_imported_detached_is_refused(svc: OrbisService) -> None:
    infra = await svc.import_(who(), radl_export(rsa_key()))
    for attempt in (lambda: svc.power(who(), infra, "stop", 0),
                    lambda: svc.power(who(), infra, "start"),
                    lambda: svc.remove_nodes(who(), infra, [1]),
                    lambda: svc.reconfigure(who(), infra, None, [0])):  # fmt: skip
        with pytest.raises(Detached, match="is detached"):
            await attempt()


async def test_an_orbis_infrastructure_written_in_ims_form_imports_back(svc: OrbisService
                                                                        ) -> None:  # fmt: skip
    first = await svc.import_(who(), tosca_export(rsa_key()))
    data = await svc.export(who(), first, form="im")
    doc = json.loads(data)
    assert doc["auth"] is None and "TOSCA" in doc["extra_info"]
    assert all(isinstance(v, str) for v in doc["vm_list"])  # IM nests each VM as JSON text
    assert json.loads(json.loads(doc["vm_list"][1])["cloud"])["id"] == "ost"
    again = await svc.import_(who(), data)
    assert again != first

    def view(infra_id: str) -> list[tuple[object, ...]]:
        return [(n.vm_id, n.name, n.state, n.public_ip, n.private_ip, n.provider_id,
                 n.site, n.ssh_user, n.ssh_port, n.adoption)
                for n in svc.store.nodes(infra_id)]  # fmt: skip

    assert view(again) == view(first)
    a, b = svc.store.get(first), svc.store.get(again)
    assert a is not None and b is not None
    assert b.template == a.template and svc.private_key(b) == svc.private_key(a)


async def test_a_created_orbis_infrastructure_round_trips_through_ims_form(svc: OrbisService
                                                                           ) -> None:  # fmt: skip
    text = yaml_text()
    infra = await svc.create(who(), text)
    assert await svc.wait_reconciled(infra, timeout=30)
    again = await svc.import_(who(), await svc.export(who(), infra, form="im"))
    old = [(n.vm_id, n.name, n.state, n.private_ip, n.provider_id)
           for n in svc.store.nodes(infra)]  # fmt: skip
    new = [(n.vm_id, n.name, n.state, n.private_ip, n.provider_id)
           for n in svc.store.nodes(again)]  # fmt: skip
    assert new == old and len(new) == 2
    # simulated machines carry no owner mark: the import may not act on them
    assert {n.adoption for n in svc.store.nodes(again)} == {"detached"}


def yaml_text() -> str:
    import yaml

    return yaml.safe_dump(TOSCA)


async def test_the_quota_applies_before_anything_is_written(svc: OrbisService,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:  # fmt: skip
    monkeypatch.setenv("ORBIS_MAX_NODES_PER_INFRA", "1")
    with pytest.raises(QuotaExceeded, match="ORBIS_MAX_NODES_PER_INFRA"):
        await svc.import_(who(), radl_export(rsa_key()))
    assert svc.list_ids(who()) == []


def _edit(data: str, change) -> str:  # type: ignore[no-untyped-def]
    doc = json.loads(data)
    doc["vm_list"] = vms = [json.loads(v) for v in doc["vm_list"]]
    change(doc, vms)
    if isinstance(doc.get("vm_list"), list):  # back to IM's form: each VM a JSON string
        doc["vm_list"] = [json.dumps(v) if isinstance(v, dict) else v for v in doc["vm_list"]]
    return json.dumps(doc)


BAD = [
    (lambda d, v: d.update(vm_list={}), "vm_list: must be a list"),
    (lambda d, v: d.pop("vm_list"), "neither Orbis's export (format orbis-export/1) nor IM's"),
    (lambda d, v: d.update(radl=""), "radl: missing"),
    (lambda d, v: d.update(extra_info={"TOSCA": 3}), "extra_info.TOSCA: must be the TOSCA"),
    (lambda d, v: v[0].pop("im_id"), "vm_list[0].im_id: missing"),
    (lambda d, v: v[1].update(im_id=0), "two VMs have the same im_id"),
    (lambda d, v: v[0].update(state="sleeping"), "vm_list[0].state: 'sleeping' is not an IM"),
    (lambda d, v: v[1].pop("info"), "vm_list[1].info: missing"),
    (lambda d, v: v[1].update(info="system ("), "vm_list[1].info: is not RADL"),
    (lambda d, v: v[0].update(info="network n ()"), "must describe exactly one system"),
    (lambda d, v: v[0].pop("cloud"), "vm_list[0].cloud: missing"),
    (lambda d, v: v[0].update(cloud="{"), "vm_list[0].cloud: is a string but not JSON"),
    (lambda d, v: v[0].update(cloud={"id": "x"}), "vm_list[0].cloud.type: missing"),
    (lambda d, v: v[0].update(info=v[0]["info"].replace("system front", "system other")),
     "system 'other' is not in the infrastructure's template"),
    (lambda d, v: v[0].update(info=v[0]["info"].replace("BEGIN RSA", "BEGIN NOTHING")),
     "VM 0: disk.0.os.credentials.private_key is not an SSH private key"),
    (lambda d, v: d.update(radl="system ( broken"), "radl: "),
    (lambda d, v: d.update(vm_list=[3]), "vm_list[0]: must be an object"),
    (lambda d, v: v[1].update(id="i" * 256), "vm_list[1]: provider_id is longer than 255"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "message"), BAD)
async def test_a_bad_im_export_is_refused_naming_the_field(svc: OrbisService, change,
                                                           message: str) -> None:  # fmt: skip
    data = _edit(radl_export(rsa_key()), change)
    with pytest.raises(InvalidRequest) as refused:
        await svc.import_(who(), data)
    assert message in str(refused.value)
    assert str(refused.value).startswith("Error Importing Inf.")
    assert svc.list_ids(who()) == []


async def test_unknown_format_of_an_export_is_refused(svc: OrbisService) -> None:
    infra = await svc.import_(who(), radl_export(rsa_key()))
    with pytest.raises(InvalidRequest, match="unknown format 'xml'"):
        await svc.export(who(), infra, form="xml")


ODD = [None, True, 7, -1, "x", "", [], ["a"], {}, {"a": 1}, "x" * 300]
VM_FIELDS = ["id", "im_id", "state", "destroy", "cloud", "info", "cont_out", "error_msg"]


@pytest.mark.parametrize("field", VM_FIELDS)
async def test_any_value_of_a_vm_field_is_imported_or_a_400(svc: OrbisService, field: str
                                                            ) -> None:  # fmt: skip
    """Type confusion in the client's data never ends in anything but InvalidRequest."""
    key = rsa_key()
    for value in ODD:
        data = _edit(radl_export(key), lambda d, v, value=value: v[0].update({field: value}))
        try:
            await svc.import_(who(), data)
        except InvalidRequest as exc:
            assert str(exc).startswith("Error Importing Inf.: "), exc


@pytest.mark.parametrize("feature", ["net_interface.0.ip", "net_interface.0.connection",
                                     "disk.0.os.credentials.username", "outbound"])  # fmt: skip
async def test_odd_radl_values_in_a_vms_info_are_imported_or_a_400(
        svc: OrbisService, feature: str) -> None:  # fmt: skip
    key = rsa_key()
    for value in ("['a', 'b']", "5", "'" + "9" * 100 + "'", "''"):
        def change(d, v, value=value):  # type: ignore[no-untyped-def]
            info = v[0]["info"]
            head, sep, rest = info.partition(f"{feature} = ")
            if sep:
                rest = rest.split(" ", 1)[1] if " " in rest else ")"
                v[0]["info"] = f"{head}{sep}{value} {rest}"
        try:
            await svc.import_(who(), _edit(radl_export(key), change))
        except InvalidRequest as exc:
            assert str(exc).startswith("Error Importing Inf.: "), exc
