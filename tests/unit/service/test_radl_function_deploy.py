"""A RADL function system (IM's OSCAR connector's form) is deployed by the functions engine as
the same TOSCA FaaS node is: the same service on the OSCAR cluster, deleted on destroy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from orbis.auth import identify
from orbis.service import OrbisService
from orbis.testing.services import sim_service
from orbis.testing.standins.oscar import Cluster, oscar_cluster

RADL = """system plants (
    name = 'plants' and
    memory.size = 256Mi and
    cpu.count = 1 and
    disk.0.image.url = 'docker://orbis-node:latest' and
    script = '#!/bin/sh
echo hi' and
    environment.variables = ['MODE:fast'] and
    input.0.provider = 'minio.default' and input.0.path = 'plants-in' and
    output.0.provider = 'minio.default' and output.0.path = 'plants-out'
)
deploy plants 1 oscar_a
"""

TOSCA = """tosca_definitions_version: tosca_simple_yaml_1_0
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
        env_variables: {MODE: fast}
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


async def _deployed(service: OrbisService, cluster: Cluster, text: str) -> dict[str, object]:
    """The service `text` made on the cluster; the infrastructure is destroyed after."""
    alice = identify("id = im; type = InfrastructureManager; username = alice; password = a\n"
                     f"id = oscar_a; type = OSCAR; host = {cluster.url}; username = oscar; "
                     f"password = {cluster.password}")[0]  # fmt: skip
    infra = await service.create(alice, text)
    assert await service.wait_reconciled(infra, timeout=60)
    [row] = service.store.functions(infra)
    assert (row.name, row.state, row.backend, row.site) == ("plants", "running", "oscar",
                                                            "oscar_a")  # fmt: skip
    made = cluster.services["plants"].model_dump()
    await service.destroy(alice, infra)
    assert await service.wait_reconciled(infra, timeout=60)
    assert cluster.services == {}  # deleted with the infrastructure
    return made


async def test_a_radl_function_makes_the_service_the_tosca_node_makes(
    service: OrbisService, cluster: Cluster
) -> None:
    from_radl = await _deployed(service, cluster, RADL)
    assert from_radl["script"] == "#!/bin/sh\necho hi" and from_radl["memory"] == "256Mi"
    assert from_radl["cpu"] == "1"  # the TOSCA type's default, written in the RADL
    assert await _deployed(service, cluster, TOSCA) == from_radl
