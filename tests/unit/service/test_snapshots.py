"""Disk snapshots (IM's PUT .../vms/<vm>/disks/<n>/snapshot): the image is made at the node's
own site, its URL is answered and recorded, and `auto_delete` images go with the
infrastructure while the others stay. Sites are simulated clouds (one SQLite file each)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from orbis import config
from orbis.api.app import create_app
from orbis.auth import identify
from orbis.providers.sim import SimProvider, SimSite
from orbis.secrets import Sealer
from orbis.service import NotFoundError, OrbisService, ServiceError
from orbis.store.repository import Store

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    front:
      type: tosca.nodes.Compute
      capabilities:
        host: {properties: {num_cpus: 1}}
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"


@pytest.fixture
async def svc(tmp_path: Path, db_url: str) -> AsyncIterator[OrbisService]:
    store = Store(db_url)
    default = SimProvider(tmp_path / "local.db", latency=0.0, config_seconds=0.0)
    started = OrbisService(store, default, tmp_path / "work", holder="test:1")
    started.configure_access(Sealer(Fernet.generate_key()))
    started.sites.classes["simcloud"] = SimSite
    await started.resume()
    yield started
    await started.shutdown()


def images(path: Path) -> list[str]:
    return [image.url for image in SimSite({"path": str(path)}).images()]


async def deployed(svc: OrbisService, auth: str) -> str:
    infra = await svc.create(identify(auth)[0], TEMPLATE)
    assert await svc.wait_reconciled(infra, timeout=30)
    return infra


async def test_the_image_is_made_at_the_nodes_site_and_auto_delete_decides_its_fate(svc, tmp_path):
    auth = f"{ALICE}\nid = cloud; type = SimCloud; path = {tmp_path / 'cloud.db'}"
    who = identify(auth)[0]
    infra = await deployed(svc, auth)
    kept = await svc.snapshot(who, infra, 0, 0, "kept")
    gone = await svc.snapshot(who, infra, 0, 0, "scratch", auto_delete=True)
    assert kept.startswith("sim://cloud/") and gone.startswith("sim://cloud/") and kept != gone
    assert images(tmp_path / "cloud.db") == [kept, gone]
    assert images(tmp_path / "local.db") == []  # not at the server's own back-end
    assert [(s.site, s.url, s.auto_delete) for s in svc.store.snapshots(infra)] == [
        ("cloud", kept, False), ("cloud", gone, True)]
    assert f"saved as image {gone} (deleted with the infrastructure)" in svc.store.get(infra).log
    await svc.destroy(who, infra)
    assert images(tmp_path / "cloud.db") == [kept]
    assert "Deleted image " + gone in svc.store.get(infra).log


async def test_a_kept_snapshot_boots_new_nodes_and_a_deleted_one_is_gone(svc, tmp_path):
    auth = f"{ALICE}\nid = cloud; type = SimCloud; path = {tmp_path / 'cloud.db'}"
    who = identify(auth)[0]
    first = await deployed(svc, auth)
    kept = await svc.snapshot(who, first, 0, 0, "golden")
    scratch = await svc.snapshot(who, first, 0, 0, "scratch", auto_delete=True)
    await svc.destroy(who, first)

    def booted(url: str) -> str:
        return TEMPLATE.replace("host: {properties: {num_cpus: 1}}",
                                "host: {properties: {num_cpus: 1}}\n"
                                f"        os: {{properties: {{image: '{url}'}}}}")  # fmt: skip

    good = await svc.create(who, booted(kept))
    bad = await svc.create(who, booted(scratch))
    assert await svc.wait_reconciled(good, timeout=30)
    assert await svc.wait_reconciled(bad, timeout=30)
    assert [(n.state, n.site) for n in svc.store.nodes(good)] == [("configured", "cloud")]
    (failed,) = svc.store.nodes(bad)
    assert failed.state == "failed" and f"image {scratch} not found" in failed.error


async def test_errors_name_the_problem(svc, tmp_path):
    who = identify(ALICE)[0]
    infra = await deployed(svc, ALICE)
    with pytest.raises(ServiceError, match="has no disk 2"):
        await svc.snapshot(who, infra, 0, 2, "x")
    with pytest.raises(NotFoundError):
        await svc.snapshot(who, infra, 7, 0, "x")
    with pytest.raises(ServiceError, match="image_name"):
        await svc.snapshot(who, infra, 0, 0, "  ")
    bob = identify("id = im; type = InfrastructureManager; username = bob; password = b")[0]
    with pytest.raises(ServiceError):
        await svc.snapshot(bob, infra, 0, 0, "x")
    assert images(tmp_path / "local.db") == []
    assert svc.store.snapshots(infra) == []


def test_the_im_route_answers_the_image_url(tmp_path, db_url):
    settings = replace(config.load(), home=tmp_path, db_url=db_url)
    default = SimProvider(tmp_path / "local.db", latency=0.0, config_seconds=0.0)
    headers = {"Authorization": ALICE}
    with TestClient(create_app(settings, default)) as client:
        made = client.post("/infrastructures", content=TEMPLATE,
                           headers={**headers, "Content-Type": "text/yaml"})  # fmt: skip
        assert made.status_code == 200, made.text
        infra = made.text.rsplit("/", 1)[-1]
        base = f"/infrastructures/{infra}/vms/0/disks"
        plain = client.put(f"{base}/0/snapshot?image_name=mine&auto_delete=yes", headers=headers)
        assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/plain")
        assert plain.text in images(tmp_path / "local.db")
        as_json = client.put(f"{base}/0/snapshot?image_name=two",
                             headers={**headers, "Accept": "application/json"})  # fmt: skip
        assert as_json.json()["uri"] in images(tmp_path / "local.db")
        assert client.put(f"{base}/0/snapshot", headers=headers).status_code == 400
        assert client.put(f"{base}/x/snapshot?image_name=a", headers=headers).status_code == 400
        bad = client.put(f"{base}/0/snapshot?image_name=a&auto_delete=maybe", headers=headers)
        assert bad.status_code == 400 and "auto_delete" in bad.text
        missing = client.put(f"{base}/3/snapshot?image_name=a", headers=headers)
        assert missing.status_code == 400 and "has no disk 3" in missing.text
        assert client.delete(f"/infrastructures/{infra}", headers=headers).status_code == 200
    assert images(tmp_path / "local.db") == [as_json.json()["uri"]]


class BrokenImages(SimSite):
    def snapshot(self, provider_id: str, disk: int, name: str) -> str:
        raise RuntimeError("SDK failure, token=s3cr3t")


async def test_an_untyped_sdk_error_is_named_by_type_only(svc, tmp_path):
    svc.sites.classes["brokenimages"] = BrokenImages
    auth = f"{ALICE}\nid = cloud; type = BrokenImages; path = {tmp_path / 'cloud.db'}"
    who = identify(auth)[0]
    infra = await deployed(svc, auth)
    with pytest.raises(ServiceError) as caught:
        await svc.snapshot(who, infra, 0, 0, "x")
    assert str(caught.value) == ("Error creating snapshot: unexpected RuntimeError "
                                 "(see the server log)")  # fmt: skip
    assert svc.store.snapshots(infra) == []
