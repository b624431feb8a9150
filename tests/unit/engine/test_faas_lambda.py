"""Lambda functions from ECR images, on moto's server with the user's own credentials:
created (package type Image, memory, timeout, environment, tags), updated when the template
changes, given an API Gateway when asked, deleted with count 0 and destroy. A non-ECR image
fails that function only. moto cannot run image functions (its Invoke answers 500): invoke
reports that error, and with moto's runtime stood in for (image_runtime) the event reaches the
function and its answer or failure comes back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import pytest

from orbis.auth import identify
from orbis.service import Conflict, OrbisService
from orbis.testing.services import sim_service
from orbis.testing.standins.moto import image_runtime, moto_server

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/resize:1"
TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - grycap_custom_types: https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml
topology_template:
  node_templates:
    resize:
      type: tosca.nodes.aisprint.FaaS.Function
      properties:
        name: resize
        memory: MEMORY
        image: IMAGE
        script: "python resize.py"
        env_variables: {SIZE: "64"}
        api_gateway: true
      capabilities:
        scalable: {properties: {count: COUNT}}
    not_ecr:
      type: tosca.nodes.aisprint.FaaS.Function
      properties:
        name: other
        memory: 256Mi
        image: docker.io/grycap/other
        script: "echo"
  outputs:
    url: {value: {get_attribute: [resize, endpoint]}}
    cred: {value: {get_attribute: [resize, credential]}}
  policies:
    - where:
        type: tosca.policies.indigo.Placement
        properties: {cloud_id: aws}
        targets: [resize, not_ecr]
"""


def template(memory: str = "512Mi", count: int = 1) -> str:
    return (TEMPLATE.replace("MEMORY", memory).replace("COUNT", str(count))
            .replace("IMAGE", IMAGE))  # fmt: skip


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with moto_server() as url:
        for service in ("LAMBDA", "IAM", "API_GATEWAY"):
            monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", url)
        yield url


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[OrbisService]:
    async with sim_service(tmp_path) as svc:
        yield svc


def aws(client: str, url: str) -> object:
    return boto3.client(client, endpoint_url=url, region_name="eu-west-1",
                        aws_access_key_id="AKUSER", aws_secret_access_key="SKUSER")  # fmt: skip


async def test_lambda_create_update_delete(service: OrbisService, moto: str) -> None:
    role = aws("iam", moto).create_role(  # type: ignore[attr-defined]
        RoleName="lambda-exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = aws("lambda", moto)
    gateway = aws("apigateway", moto)
    who = identify("id = im; type = InfrastructureManager; username = alice; password = a\n"
                   f"id = aws; type = Lambda; username = AKUSER; password = SKUSER; "
                   f"role = {role}")[0]  # fmt: skip
    infra = await service.create(who, template())
    assert await service.wait_reconciled(infra, timeout=60)
    rows = {r.name: r for r in service.store.functions(infra)}
    assert rows["resize"].state == "running", rows["resize"].error
    conf = lam.get_function(FunctionName="resize")  # type: ignore[attr-defined]
    assert conf["Configuration"]["PackageType"] == "Image"
    assert conf["Code"]["ImageUri"] == IMAGE
    assert conf["Configuration"]["MemorySize"] == 512
    assert conf["Configuration"]["Timeout"] == 900
    assert conf["Configuration"]["Environment"]["Variables"] == {"SIZE": "64"}
    assert conf["Tags"] == {"orbis.infrastructure": infra}
    # the ECR registry's region, and the API Gateway asked for
    apis = gateway.get_rest_apis()["items"]  # type: ignore[attr-defined]
    assert [a["name"] for a in apis] == ["orbis-resize"]
    outputs = service.outputs(who, infra)
    assert outputs["url"] == (f"https://{apis[0]['id']}.execute-api.eu-west-1.amazonaws.com"
                              "/scar/launch")  # fmt: skip
    assert outputs["cred"] is None
    assert rows["not_ecr"].state == "failed"
    assert "image 'docker.io/grycap/other' is not in ECR" in rows["not_ecr"].error
    listing = service.functions_of(who, infra)
    assert {f["name"]: f["state"] for f in listing} == {"resize": "running", "not_ecr": "failed"}

    with pytest.raises(Conflict) as caught:  # moto itself cannot run image functions
        await service.invoke(who, infra, "resize", b'{"x": 1}')
    assert "function 'resize': Invoke:" in str(caught.value)
    # everything up to the container: moto routes the Invoke to the function, which gets the
    # event as sent (JSON as it is, other bytes as IM/SCAR's {"body": ...}); its answer and
    # its failure come back to `orbis invoke`
    with image_runtime() as runtime:
        assert json.loads(await service.invoke(who, infra, "resize", b'{"x": 1}')) == {
            "statusCode": 200, "body": {"x": 1}}
        await service.invoke(who, infra, "resize", b"photo bytes")
        runtime.answer = lambda event: 1 / 0
        with pytest.raises(Conflict, match="Invoke: the function failed: .*ZeroDivisionError"):
            await service.invoke(who, infra, "resize", b"{}")
    assert runtime.calls == [("resize", {"x": 1}), ("resize", {"body": "photo bytes"}),
                             ("resize", {})]  # fmt: skip

    await service.add_resources(who, infra, template(memory="1GiB"))
    assert await service.wait_reconciled(infra, timeout=60)
    conf = lam.get_function(FunctionName="resize")  # type: ignore[attr-defined]
    assert conf["Configuration"]["MemorySize"] == 1024

    await service.add_resources(who, infra, template(count=0))
    assert await service.wait_reconciled(infra, timeout=60)
    assert lam.list_functions()["Functions"] == []  # type: ignore[attr-defined]
    assert gateway.get_rest_apis()["items"] == []  # type: ignore[attr-defined]

    await service.add_resources(who, infra, template(count=1))
    assert await service.wait_reconciled(infra, timeout=60)
    assert len(lam.list_functions()["Functions"]) == 1  # type: ignore[attr-defined]
    await service.destroy(who, infra)
    assert await service.wait_reconciled(infra, timeout=60)
    assert lam.list_functions()["Functions"] == []  # type: ignore[attr-defined]


async def test_lambda_without_a_role_fails_that_function(service: OrbisService,
                                                         moto: str) -> None:  # fmt: skip
    who = identify("id = im; type = InfrastructureManager; username = alice; password = a\n"
                   "id = aws; type = Lambda; username = AKUSER; password = SKUSER")[0]
    infra = await service.create(who, template())
    assert await service.wait_reconciled(infra, timeout=60)
    row = next(r for r in service.store.functions(infra) if r.name == "resize")
    assert row.state == "failed" and "needs role" in row.error
    await service.destroy(who, infra)
    assert await service.wait_reconciled(infra, timeout=60)


async def test_an_imported_lambda_function_is_adopted_only_with_a_line_that_reads_it(
    service: OrbisService, moto: str
) -> None:
    role = aws("iam", moto).create_role(  # type: ignore[attr-defined]
        RoleName="lambda-import", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    line = f"id = aws; type = Lambda; username = AKUSER; password = SKUSER; role = {role}"
    alice = identify("id = im; type = InfrastructureManager; username = alice; password = a\n"
                     + line)[0]  # fmt: skip
    infra = await service.create(alice, template())
    assert await service.wait_reconciled(infra, timeout=60)
    text = await service.export(alice, infra, delete=True)
    # Bob has no Lambda line: the record names a function he cannot be shown to own
    bob = identify("id = im; type = InfrastructureManager; username = bob; password = b")[0]
    theirs = await service.import_(bob, text)
    row = next(r for r in service.store.functions(theirs) if r.name == "resize")
    assert row.state == "detached" and "no lambda auth line with id = aws" in row.error
    await service.destroy(bob, theirs)
    assert await service.wait_reconciled(theirs, timeout=60)
    lam = aws("lambda", moto)
    assert len(lam.list_functions()["Functions"]) == 1  # type: ignore[attr-defined]
    # Alice's keys read it: adopted, and deleted with her infrastructure
    mine = await service.import_(alice, text)
    row = next(r for r in service.store.functions(mine) if r.name == "resize")
    assert row.state == "running", row.error
    await service.destroy(alice, mine)
    assert await service.wait_reconciled(mine, timeout=60)
    assert lam.list_functions()["Functions"] == []  # type: ignore[attr-defined]
