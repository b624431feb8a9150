"""What Orbis POSTs and PUTs to OSCAR carries what IM would send for the same template.

Our own templates shaped as IM's FaaS test templates (a function hosted on an OSCAR node, an
unhosted one on an OSCAR auth line, a RADL system as IM's OSCAR connector reads it), deployed
through the service onto the recording OSCAR stand-in over real HTTP. The bodies IM would send
are written from IM's own tests and code (facts, docs/functions.md "Checked against IM"): its
recipe for a hosted function sends `alpine` and `enable_gpu` even when false and whole MiB
(512 MB -> 488Mi); its connector sends MiB as %g (488.281Mi), cpu as a string, environment
variables under `Variables`, paths as written, a MinIO provider with verify false. An
`oscar://HOST/…` image goes to the OSCAR line at HOST, as IM's connector takes it only there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from orbis.auth import identify
from orbis.service import OrbisService
from orbis.testing.services import sim_service
from orbis.testing.standins.oscar import Cluster, oscar_cluster

HEADER = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - ec3_custom_types: https://raw.githubusercontent.com/grycap/ec3/tosca/tosca/custom_types.yaml
topology_template:
  node_templates:
"""
FUNCTION = """    leaves:
      type: tosca.nodes.aisprint.FaaS.Function
      properties:
        name: leaves
        memory: 512MB
        script: |
          #!/bin/sh
          echo leaf
        cpu: CPU
        image: grycap/leaves
        env_variables: {LEVEL: high}
        input:
          - storage_provider: minio.default
            path: /leaves-in
        output:
          - storage_provider: minio.default
            path: leaves-out
            suffix: [txt]
        storage_providers:
          onedata:
            space_a:
              oneprovider_host: op.example.org
              token: od-token
              space: space-a
"""
HOSTED = HEADER + FUNCTION + """      requirements:
        - host: oscar
    oscar:
      type: tosca.nodes.indigo.OSCAR
      properties: {dns_host: "URL", password: PASSWORD}
      requirements:
        - host: front
    front:
      type: tosca.nodes.indigo.Compute
      capabilities:
        host: {properties: {num_cpus: 1, mem_size: 2 GB}}
  outputs:
    url: {value: {get_attribute: [leaves, endpoint]}}
    cred: {value: {get_attribute: [leaves, credential]}}
"""
UNHOSTED = HEADER + FUNCTION + """  outputs:
    url: {value: {get_attribute: [leaves, endpoint]}}
    cred: {value: {get_attribute: [leaves, credential]}}
"""
COMMON = {
    "name": "leaves", "image": "grycap/leaves", "script": "#!/bin/sh\necho leaf\n",
    "cpu": "0.5", "environment": {"Variables": {"LEVEL": "high"}},
    "input": [{"storage_provider": "minio.default", "path": "/leaves-in"}],
    "output": [{"storage_provider": "minio.default", "path": "leaves-out", "suffix": ["txt"]}],
    "storage_providers": {"onedata": {"space_a": {"oneprovider_host": "op.example.org",
                                                  "token": "od-token", "space": "space-a"}}},
}  # fmt: skip
# IM's recipe for a hosted function (its Tosca test's oscar_service_json, for our values)
IM_HOSTED = {**COMMON, "memory": "488Mi", "alpine": False, "enable_gpu": False}
# IM's OSCAR connector for the RADL system its TOSCA translation makes
IM_UNHOSTED = {**COMMON, "memory": "488.281Mi"}

RADL = """system plants (
    name = 'plants' and
    memory.size = 2Gi and
    cpu.count = 1.0 and
    disk.0.image.url = 'oscar://127.0.0.1/grycap/oscar-theano-plants' and
    script = 'plants.sh' and
    environment.variables = ['a:b'] and
    input.0.provider = 'minio.store' and
    input.0.path = '/plants-input' and
    input.0.suffix = ['*.txt'] and
    output.0.provider = 'minio.store' and
    output.0.path = '/plants-output' and
    minio.0.id = 'store' and
    minio.0.endpoint = 'ENDPOINT' and
    minio.0.region = 'us-east-1' and
    minio.0.access_key = 'ACCESS' and
    minio.0.secret_key = 'SECRET'
)
deploy plants 1
"""


def carries(body: Any, expected: Any, where: str = "body") -> None:
    """Every field of `expected` is in `body` with the same value (maps recursively)."""
    if isinstance(expected, dict):
        assert isinstance(body, dict), f"{where}: {body!r} is not a map"
        for key, value in expected.items():
            assert key in body, f"{where}.{key} is missing ({sorted(body)})"
            carries(body[key], value, f"{where}.{key}")
    else:
        assert body == expected, f"{where}: {body!r}, IM sends {expected!r}"


def bodies(cluster: Cluster, method: str) -> list[dict[str, Any]]:
    return [b for m, p, b in cluster.requests if m == method and p == "/system/services"]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with oscar_cluster("oscar-im") as found:
        yield found


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[OrbisService]:
    async with sim_service(tmp_path) as svc:
        yield svc


def lines(cluster: Cluster, first: str = "") -> str:
    return ("id = im; type = InfrastructureManager; username = alice; password = a\n" + first
            + f"id = oscar_a; type = OSCAR; host = {cluster.url}; username = oscar; "
            f"password = {cluster.password}")  # fmt: skip


async def test_a_hosted_function_sends_what_ims_recipe_sends(
    service: OrbisService, cluster: Cluster
) -> None:
    # no OSCAR line: the function goes to the OSCAR node of the template, its machine to the
    # server's (simulated) cloud
    who = identify(lines(cluster).splitlines()[0])[0]
    text = HOSTED.replace("URL", cluster.url).replace("PASSWORD", cluster.password)
    infra = await service.create(who, text.replace("CPU", "0.5"))
    assert await service.wait_reconciled(infra, timeout=60)
    [row] = service.store.functions(infra)
    assert row.state == "running", row.error
    [body] = bodies(cluster, "POST")
    carries(body, IM_HOSTED)
    # as IM's get_attribute: the OSCAR node's endpoint, user oscar and its password
    assert service.outputs(who, infra) == {"url": cluster.url, "cred": {
        "user": "oscar", "token_type": "password", "token": cluster.password}}
    await service.destroy(who, infra)
    assert await service.wait_reconciled(infra, timeout=60)
    assert cluster.services == {}


async def test_an_unhosted_function_sends_what_ims_connector_sends_on_create_and_update(
    service: OrbisService, cluster: Cluster
) -> None:
    who = identify(lines(cluster))[0]
    infra = await service.create(who, UNHOSTED.replace("CPU", "0.5"))
    assert await service.wait_reconciled(infra, timeout=60)
    [row] = service.store.functions(infra)
    assert row.state == "running", row.error
    [body] = bodies(cluster, "POST")
    carries(body, IM_UNHOSTED)
    await service.add_resources(who, infra, UNHOSTED.replace("CPU", "2"))
    assert await service.wait_reconciled(infra, timeout=60)
    [body] = bodies(cluster, "PUT")  # IM's alterVM PUTs the whole definition again
    carries(body, {**IM_UNHOSTED, "cpu": "2"})
    assert cluster.services["leaves"].environment.all_variables == {"LEVEL": "high"}
    await service.destroy(who, infra)
    assert await service.wait_reconciled(infra, timeout=60)
    assert cluster.services == {}


async def test_a_radl_oscar_image_goes_to_the_line_at_its_host_with_ims_body(
    service: OrbisService, cluster: Cluster
) -> None:
    """The first OSCAR line is elsewhere: IM's connector takes `oscar://127.0.0.1/…` only on
    the cloud at 127.0.0.1, so does Orbis (the other line is never contacted)."""
    radl = (RADL.replace("ENDPOINT", cluster.minio.endpoint)
            .replace("ACCESS", cluster.minio.access_key)
            .replace("SECRET", cluster.minio.secret_key))  # fmt: skip
    elsewhere = "id = other; type = OSCAR; host = https://oscar.other.example; token = t\n"
    who = identify(lines(cluster, first=elsewhere))[0]
    infra = await service.create(who, radl)
    assert await service.wait_reconciled(infra, timeout=60)
    [row] = service.store.functions(infra)
    assert (row.state, row.site) == ("running", "oscar_a"), row.error
    [body] = bodies(cluster, "POST")
    carries(body, {
        "name": "plants", "memory": "2048Mi", "cpu": "1", "script": "plants.sh",
        "image": "grycap/oscar-theano-plants", "environment": {"Variables": {"a": "b"}},
        "input": [{"storage_provider": "minio.store", "path": "/plants-input",
                   "suffix": ["*.txt"]}],
        "output": [{"storage_provider": "minio.store", "path": "/plants-output"}],
        "storage_providers": {"minio": {"store": {
            "access_key": cluster.minio.access_key, "secret_key": cluster.minio.secret_key,
            "endpoint": cluster.minio.endpoint, "region": "us-east-1", "verify": False}}},
    })  # fmt: skip
    await service.destroy(who, infra)
    assert await service.wait_reconciled(infra, timeout=60)
    assert cluster.services == {}

    # no OSCAR line at the host the image names: that function fails, saying so
    moved = radl.replace("oscar://127.0.0.1/", "oscar://oscar.nowhere.example/")
    infra = await service.create(who, moved)
    assert await service.wait_reconciled(infra, timeout=60)
    [row] = service.store.functions(infra)
    assert row.state == "failed"
    assert ("names the OSCAR cluster at oscar.nowhere.example, and no auth line of type OSCAR "
            "has host oscar.nowhere.example") in row.error  # fmt: skip
    await service.destroy(who, infra)
    assert await service.wait_reconciled(infra, timeout=60)


def test_an_oscar_image_names_its_line_by_host_also_with_a_cloud_id() -> None:
    """IM matches the cloud's server against the image's host, without scheme or port."""
    from dataclasses import replace

    from orbis.engine.function_places import place
    from orbis.model.infrastructure import ServerlessFunction, Template
    from orbis.providers.oscar import FdlError

    fn = ServerlessFunction(name="fn", type="tosca.nodes.aisprint.FaaS.Function",
                            image="oscar://B.example/grycap/x", script="echo",
                            properties={"name": "x"}, cloud_id="a")  # fmt: skip
    found = [{"id": "a", "type": "OSCAR", "host": "https://a.example", "token": "t"},
             {"id": "b", "type": "OSCAR", "host": "b.example:8443", "token": "t"}]  # fmt: skip
    with pytest.raises(FdlError, match="no OSCAR or Lambda auth line with id = a at host "
                                       "b.example"):  # fmt: skip
        place(fn, Template("", ""), [], found)
    assert place(replace(fn, cloud_id="b"), Template("", ""), [], found).site == "b"
    chosen = place(replace(fn, cloud_id=None), Template("", ""), [], found)
    assert chosen.site == "b" and chosen.oscar is not None
    assert chosen.oscar.endpoint == "https://b.example:8443"
