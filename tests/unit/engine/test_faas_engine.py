"""Unhosted OSCAR functions through the service: created from the template on the stand-in
cluster of the user's auth line, not sent again when unchanged, updated, deleted (count 0 and
destroy), with endpoint/credential outputs, and per-function errors that leave the rest alone.
The stand-in checks every body against OSCAR's FDL schema and the auth."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from orbis.auth import identify
from orbis.service import OrbisService
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
        cpu: CPU
        image: docker://orbis-node:latest
        script: "#!/bin/sh\\necho hi"
        env_variables: {MODE: fast}
        input: [{storage_provider: minio.default, path: plants-in}]
        output: [{storage_provider: minio.default, path: plants-out}]
      capabilities:
        scalable: {properties: {count: COUNT}}
    broken:
      type: tosca.nodes.aisprint.FaaS.Function
      properties:
        name: broken
        memory: 128Mi
        image: grycap/x
        script: "echo"
        input: [{storage_provider: ftp.nowhere, path: in}]
    lost:
      type: tosca.nodes.aisprint.FaaS.Function
      properties:
        name: lost
        memory: 128Mi
        image: grycap/x
        script: "echo"
        replicas: [{type: oscar, cluster_id: nowhere, service_name: lost-b}]
  outputs:
    url: {value: {get_attribute: [plants, endpoint]}}
    cred: {value: {get_attribute: [plants, credential]}}
  policies:
    - where:
        type: tosca.policies.indigo.Placement
        properties: {cloud_id: oscar_a}
        targets: [plants, broken, lost]
"""


def template(cpu: str = "0.5", count: int = 1) -> str:
    return TEMPLATE.replace("CPU", cpu).replace("COUNT", str(count))


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with oscar_cluster("oscar-a") as found:
        yield found


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[OrbisService]:
    async with sim_service(tmp_path) as svc:
        yield svc


def auth(cluster: Cluster, password: str | None = None) -> str:
    return ("id = im; type = InfrastructureManager; username = alice; password = a\n"
            f"id = oscar_a; type = OSCAR; host = {cluster.url}; username = oscar; "
            f"password = {password or cluster.password}")  # fmt: skip


def writes(cluster: Cluster) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in cluster.requests if m in ("POST", "PUT", "DELETE")]


async def test_create_unchanged_update_delete(service: OrbisService, cluster: Cluster) -> None:
    who = identify(auth(cluster))[0]
    infra = await service.create(who, template())
    assert await service.wait_reconciled(infra, timeout=60)
    rows = {r.name: r for r in service.store.functions(infra)}
    assert rows["plants"].state == "running", rows["plants"].error
    body = next(b for m, p, b in cluster.requests if m == "POST" and p == "/system/services")
    assert body["cpu"] == "0.5" and body["memory"] == "256Mi"
    # IM's name (`Variables`) and OSCAR's (`variables`); OSCAR reads both as one map
    assert body["environment"] == {"Variables": {"MODE": "fast"}, "variables": {"MODE": "fast"}}
    assert set(cluster.services) == {"plants"}
    # the broken one failed on its own, naming the field; nothing of it reached OSCAR
    assert rows["broken"].state == "failed"
    assert "input[0]: storage provider 'ftp.nowhere'" in rows["broken"].error
    # a replica without a URL (no OSCAR line names its cluster): that function alone
    assert rows["lost"].state == "failed"
    assert "function 'lost': replicas[0]: cluster 'nowhere' has no URL" in rows["lost"].error
    outputs = service.outputs(who, infra)
    assert outputs["url"] == cluster.url
    assert outputs["cred"] == {"user": "oscar", "token_type": "password",
                               "token": cluster.password}  # fmt: skip

    before = len(writes(cluster))
    await service.reconfigure(who, infra)
    assert await service.wait_reconciled(infra, timeout=60)
    assert len(writes(cluster)) == before  # unchanged: not sent again

    await service.add_resources(who, infra, template(cpu="1.5"))
    assert await service.wait_reconciled(infra, timeout=60)
    assert writes(cluster)[before:] == [("PUT", "/system/services")]
    assert cluster.services["plants"].cpu == "1.5"

    await service.add_resources(who, infra, template(count=0))
    assert await service.wait_reconciled(infra, timeout=60)
    assert cluster.services == {}
    assert sorted(r.name for r in service.store.functions(infra)) == ["broken", "lost"]

    await service.add_resources(who, infra, template(count=1))
    assert await service.wait_reconciled(infra, timeout=60)
    assert set(cluster.services) == {"plants"}
    await service.destroy(who, infra)
    assert await service.wait_reconciled(infra, timeout=60)
    assert cluster.services == {}


@pytest.mark.parametrize("status", [401, 500])
async def test_oscar_refusing_fails_the_function_only(
    service: OrbisService, cluster: Cluster, status: int
) -> None:
    cluster.fail_status = status
    who = identify(auth(cluster))[0]
    infra = await service.create(who, template())
    assert await service.wait_reconciled(infra, timeout=60)
    row = next(r for r in service.store.functions(infra) if r.name == "plants")
    assert row.state == "failed"
    assert f"on oscar_a: POST /system/services: HTTP {status}" in row.error
    assert service.outputs(who, infra)["url"] is None
    cluster.fail_status = None
    await service.destroy(who, infra)
    assert await service.wait_reconciled(infra, timeout=60)


async def test_an_oscar_line_at_the_metadata_service_is_never_contacted(
    service: OrbisService, cluster: Cluster
) -> None:
    lines = auth(cluster).replace(cluster.url, "http://169.254.169.254")
    who = identify(lines)[0]
    infra = await service.create(who, template())
    assert await service.wait_reconciled(infra, timeout=60)
    row = next(r for r in service.store.functions(infra) if r.name == "plants")
    assert row.state == "failed" and "OSCAR endpoint" in row.error, row.error
    assert "169.254.169.254" in row.error
    assert cluster.requests == []
    await service.destroy(who, infra)
    assert await service.wait_reconciled(infra, timeout=60)


async def test_a_bearer_token_line_and_a_service_left_by_a_crash(
    service: OrbisService
) -> None:
    with oscar_cluster("oscar-t", tokens=("oidc-token-1",)) as cluster:
        # a run that crashed after its POST left the service there: the next one PUTs it
        leftover = {"name": "plants", "image": "x", "script": "old"}
        cluster.requests.clear()
        import httpx

        httpx.post(f"{cluster.url}/system/services", json=leftover,
                   headers={"Authorization": "Bearer oidc-token-1"}).raise_for_status()
        lines = ("id = im; type = InfrastructureManager; username = alice; password = a\n"
                 f"id = oscar_a; type = OSCAR; host = {cluster.url}; token = oidc-token-1")
        who = identify(lines)[0]
        infra = await service.create(who, template())
        assert await service.wait_reconciled(infra, timeout=60)
        row = next(r for r in service.store.functions(infra) if r.name == "plants")
        assert row.state == "running", row.error
        assert cluster.services["plants"].script == "#!/bin/sh\necho hi"
        assert ("PUT", "/system/services") in writes(cluster)
        assert service.outputs(who, infra)["cred"] == {"token_type": "bearer",
                                                       "token": "oidc-token-1"}  # fmt: skip
        await service.destroy(who, infra)
        assert await service.wait_reconciled(infra, timeout=60)
        assert cluster.services == {}


OTHER_STORAGE = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - grycap_custom_types: https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml
topology_template:
  node_templates:
    archive:
      type: tosca.nodes.aisprint.FaaS.Function
      properties:
        name: archive
        memory: 128Mi
        image: docker://orbis-node:latest
        script: "cp $INPUT_FILE_PATH $TMP_OUTPUT_DIR"
        input: [{storage_provider: minio.default, path: archive-in}]
        output:
          - {storage_provider: onedata.space1, path: results}
          - {storage_provider: webdav.dcache, path: archive/res}
          - {storage_provider: rucio.lhc, path: scope/archive}
        storage_providers:
          onedata: {space1: {oneprovider_host: op.example.org, token: od-token, space: s1}}
          webdav: {dcache: {hostname: HOSTNAME, login: u, password: webdav-pw}}
          rucio:
            lhc: {host: rucio.example.org, auth_host: rucio-auth.example.org, account: alice,
                  rse: CERN-PROD, refresh_token: rt, oidc_audience: rucio,
                  token_endpoint: https://iam.example.org/token}
  policies:
    - where:
        type: tosca.policies.indigo.Placement
        properties: {cloud_id: oscar_a}
        targets: [archive]
"""


async def test_onedata_webdav_and_rucio_providers_are_sent_and_stored(
    service: OrbisService, cluster: Cluster
) -> None:
    """The storage kinds OSCAR takes besides MinIO/S3 are checked and stored by the stand-in
    (not exercised: its jobs use MinIO), and come back as they were sent."""
    who = identify(auth(cluster))[0]
    infra = await service.create(who, OTHER_STORAGE.replace("HOSTNAME", "dcache.example.org"))
    assert await service.wait_reconciled(infra, timeout=60)
    row = service.store.functions(infra)[0]
    assert row.state == "running", row.error
    import httpx

    shown = httpx.get(f"{cluster.url}/system/services/archive",
                      auth=("oscar", cluster.password)).json()  # fmt: skip
    assert [o["storage_provider"] for o in shown["output"]] == [
        "onedata.space1", "webdav.dcache", "rucio.lhc"]
    assert shown["storage_providers"]["onedata"] == {
        "space1": {"oneprovider_host": "op.example.org", "token": "od-token", "space": "s1"}}
    assert shown["storage_providers"]["webdav"]["dcache"]["hostname"] == "dcache.example.org"
    assert shown["storage_providers"]["rucio"]["lhc"]["rse"] == "CERN-PROD"
    # a host given with its scheme fails that function, and nothing reaches OSCAR
    before = len(writes(cluster))
    await service.add_resources(who, infra,
                                OTHER_STORAGE.replace("HOSTNAME", "https://dcache.example.org"))
    assert await service.wait_reconciled(infra, timeout=60)
    row = service.store.functions(infra)[0]
    assert row.state == "failed" and "webdav.dcache.hostname: give the host name alone" in row.error
    assert writes(cluster)[before:] == []
    # the stand-in is as strict as OSCAR's docs: a scheme in a WebDAV host name is refused
    body = {"name": "raw", "image": "x", "script": "y",
            "output": [{"storage_provider": "webdav.d", "path": "p"}],
            "storage_providers": {"webdav": {"d": {"hostname": "https://h", "login": "u",
                                                   "password": "p"}}}}  # fmt: skip
    answer = httpx.post(f"{cluster.url}/system/services", json=body,
                        auth=("oscar", cluster.password))  # fmt: skip
    assert answer.status_code == 400 and "hostname" in answer.text
    await service.destroy(who, infra)
    assert await service.wait_reconciled(infra, timeout=60)
