"""Functions for real on the OSCAR stand-in: jobs run in containers of the engine.

- examples/functions.yaml, as it is, on the local back-end: the OSCAR node's machine is
  launched and configured with the OSCAR stand-in (configure/oscar_local.py: moto's S3 server
  as its MinIO, jobs as processes in the node), then the hosted service is created at the
  node's own address; a file uploaded to the input bucket comes out upper-cased in the output
  bucket; `invoke` runs it synchronously; destroy deletes the service, then the node.
- examples/functions_replicated.yaml on two stand-in clusters: A is saturated (max_jobs 0), so
  the job goes to B, which reads A's input with the A credentials Orbis gave it and writes the
  result into A's output bucket.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import boto3
import docker
import pytest
import yaml
from cryptography.fernet import Fernet

from orbis.auth import identify
from orbis.providers.local import LocalProvider
from orbis.providers.oscar import OscarAuthError, OscarClient, OscarTarget
from orbis.secrets import Sealer
from orbis.service import OrbisService
from orbis.store.repository import Store
from orbis.testing.standins.oscar import LABEL, Cluster, oscar_cluster

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
IM_LINE = "id = im; type = InfrastructureManager; username = alice; password = a"
def example(name: str, inputs: dict[str, str]) -> str:
    doc: dict[str, Any] = yaml.safe_load((REPO / "examples" / name).read_text())
    for key, value in inputs.items():
        doc["topology_template"]["inputs"][key]["default"] = value
    return yaml.safe_dump(doc, sort_keys=False)


def s3(cluster: Cluster) -> Any:
    m = cluster.minio
    return boto3.client("s3", endpoint_url=m.endpoint, region_name=m.region,
                        aws_access_key_id=m.access_key, aws_secret_access_key=m.secret_key)


def wait_object(client: Any, bucket: str, key: str, timeout: float = 120) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except client.exceptions.NoSuchKey:
            time.sleep(0.5)
    raise AssertionError(f"{bucket}/{key} never appeared")


def job_containers(engine_url: str) -> list[Any]:
    engine = docker.DockerClient(base_url=engine_url)
    return list(engine.containers.list(all=True, filters={"label": LABEL}))


async def service_for(tmp_path: Path, engine_url: str) -> OrbisService:
    svc = OrbisService(Store(f"sqlite:///{tmp_path / 'orbis.db'}"),
                       LocalProvider(base_url=engine_url), tmp_path / "work")  # fmt: skip
    svc.configure_access(Sealer(Fernet.generate_key()))
    await svc.resume()
    return svc


async def test_hosted_function_example(engine_url: str, tmp_path: Path) -> None:
    svc = await service_for(tmp_path, engine_url)
    who = identify(IM_LINE)[0]
    try:
        infra = await svc.create(who, (REPO / "examples" / "functions.yaml").read_text())
        assert await svc.wait_reconciled(infra, timeout=400)
        rows = {r.name: r for r in svc.store.functions(infra)}
        assert rows["upper"].state == "running", (rows["upper"].error, svc.contmsg(who, infra))
        assert rows["upper"].site == "node:oscar"
        [node] = svc.store.nodes(infra)
        assert node.state == "configured"
        assert "the local back-end runs the OSCAR stand-in here" in node.log
        # the OSCAR node's machine runs the stand-in: the endpoint is its own address
        endpoint = f"http://{node.public_ip or node.private_ip}"
        outputs = svc.outputs(who, infra)
        assert outputs["function_endpoint"] == endpoint == rows["upper"].endpoint
        assert outputs["function_credential"] == {"user": "oscar", "token_type": "password",
                                                  "token": "oscar-example-pw"}  # fmt: skip
        oscar = OscarClient(OscarTarget(endpoint, "oscar", "oscar-example-pw", own_node=True))
        shown = oscar.get_service("upper")  # what Orbis sent, as the node's OSCAR keeps it
        assert (shown["log_level"], shown["memory"], shown["cpu"]) == ("INFO", "256Mi", "0.5")
        with pytest.raises(OscarAuthError):  # the node's password, not any
            OscarClient(OscarTarget(endpoint, "oscar", "wrong", own_node=True)).get_service(
                "upper")

        # a file in the input bucket (the node's MinIO) starts a job; the result lands in the
        # output bucket
        minio = oscar.config()["minio_provider"]
        assert minio["endpoint"] == f"{endpoint}:9000"
        storage = boto3.client("s3", endpoint_url=minio["endpoint"], region_name="us-east-1",
                               aws_access_key_id=minio["access_key"],
                               aws_secret_access_key=minio["secret_key"])  # fmt: skip
        storage.put_object(Bucket="upper", Key="in/hello.txt", Body=b"hello oscar\n")
        assert wait_object(storage, "upper", "out/hello.txt") == b"HELLO OSCAR\n"
        # a synchronous run answers the script's output
        answer = await svc.invoke(who, infra, "upper", b"abc\n")
        assert answer == b"upper-cased input: ABC\n"
        listing = svc.functions_of(who, infra)
        assert [(f["name"], f["state"], f["endpoint"]) for f in listing] == [
            ("upper", "running", endpoint)]

        # the node got no engine socket, host folder or privilege: jobs stay inside it
        engine = docker.DockerClient(base_url=engine_url)
        container = engine.containers.get(node.provider_id)
        assert not container.attrs["HostConfig"]["Privileged"]
        assert [m for m in container.attrs["Mounts"] if m.get("Type") == "bind"] == []

        await svc.destroy(who, infra)
        assert await svc.wait_reconciled(infra, timeout=120)
        gone = svc.store.get(infra)
        assert gone is not None and "Function upper: upper deleted from node:oscar" in gone.log
        assert svc.store.functions(infra) == []  # the record went with the service
        left = engine.containers.list(all=True, filters={"label": f"orbis.infrastructure={infra}"})
        assert left == [] and job_containers(engine_url) == []
    finally:
        await svc.shutdown()


async def test_replicated_service_delegates_to_the_other_cluster(
    engine_url: str, tmp_path: Path
) -> None:
    image = os.environ["ORBIS_NODE_IMAGE"]
    with oscar_cluster("oscar_a", max_jobs=0) as a, oscar_cluster("oscar_b") as b:
        svc = await service_for(tmp_path, engine_url)
        who = identify(f"{IM_LINE}\n"
                       f"id = oscar_a; type = OSCAR; host = {a.url}; username = oscar; "
                       f"password = {a.password}\n"
                       f"id = oscar_b; type = OSCAR; host = {b.url}; username = oscar; "
                       f"password = {b.password}")[0]  # fmt: skip
        try:
            text = example("functions_replicated.yaml", {"function_image": image})
            infra = await svc.create(who, text)
            assert await svc.wait_reconciled(infra, timeout=120)
            rows = {r.name: r for r in svc.store.functions(infra)}
            assert {n: r.state for n, r in rows.items()} == {"plants_a": "running",
                                                            "plants_b": "running"}, rows
            # A's service names B (URL and login from the auth line); B's has A's MinIO
            body_a = next(x for m, p, x in a.requests if (m, p) == ("POST", "/system/services"))
            assert body_a["replicas"] == [{"type": "oscar", "priority": 0, "cluster_id": "oscar_b",
                                           "service_name": "plants-replica"}]
            assert body_a["clusters"]["oscar_b"]["endpoint"] == b.url
            body_b = next(x for m, p, x in b.requests if (m, p) == ("POST", "/system/services"))
            minio_a = body_b["storage_providers"]["minio"]["oscar_a"]
            assert (minio_a["endpoint"], minio_a["access_key"]) == (a.minio.endpoint,
                                                                    a.minio.access_key)

            storage = s3(a)
            storage.put_object(Bucket="plants", Key="in/leaf.txt", Body=b"green leaf\n")
            assert wait_object(storage, "plants", "out/leaf.txt") == b"GREEN LEAF\n"
            assert [(j.state, j.where) for j in a.jobs] == [("delegated",
                                                             "oscar_b/plants-replica")]
            assert [(j.state, j.output) for j in b.jobs] == [
                ("succeeded", ["minio.oscar_a:plants/out/leaf.txt"])]

            await svc.destroy(who, infra)
            assert await svc.wait_reconciled(infra, timeout=120)
            assert a.services == {} and b.services == {}
            assert job_containers(engine_url) == []
        finally:
            await svc.shutdown()


CLI_TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - grycap_custom_types: https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml
topology_template:
  node_templates:
    count_words:
      type: tosca.nodes.aisprint.FaaS.Function
      properties:
        name: count-words
        memory: 128Mi
        image: IMAGE
        script: |
          #!/bin/sh
          echo "words: $(wc -w < "$INPUT_FILE_PATH")"
    bad_replica:
      type: tosca.nodes.aisprint.FaaS.Function
      properties:
        name: bad-replica
        memory: 128Mi
        image: IMAGE
        script: "echo"
        replicas: [{type: endpoint, priority: 1}]
"""


def test_cli_lists_and_invokes_functions(engine_url: str, tmp_path: Path) -> None:
    from orbis.testing.server import orbis_server

    image = os.environ["ORBIS_NODE_IMAGE"]
    template = tmp_path / "words.yaml"
    template.write_text(CLI_TEMPLATE.replace("IMAGE", image))
    with oscar_cluster("oscar-cli") as cluster, orbis_server(
        env={"ORBIS_PROVIDER": "sim"}
    ) as server:
        with server.auth_file.open("a") as auth:
            auth.write(f"id = oscar; type = OSCAR; host = {cluster.url}; username = oscar; "
                       f"password = {cluster.password}\n")
        deployed = server.cli("deploy", str(template), "--no-wait")
        assert deployed.returncode == 0, deployed.stderr
        infra = deployed.stdout.split("Infrastructure ", 1)[1].split()[0]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listing = server.cli("functions", infra, "--json")
            assert listing.returncode == 0, listing.stderr
            states = {f["name"]: f for f in json.loads(listing.stdout)}
            if states["count_words"]["state"] == "running" and states["bad_replica"]["state"]:
                break
            time.sleep(0.5)
        assert states["count_words"]["endpoint"] == cluster.url
        assert states["count_words"]["service"] == "count-words"
        assert states["bad_replica"]["state"] == "failed"
        assert "replicas[0]: a replica of type endpoint needs a url" in (
            states["bad_replica"]["error"])
        table = server.cli("functions", infra)
        assert "count-words" in table.stdout and "running" in table.stdout
        shown = server.cli("show", infra)
        assert "Functions" in shown.stdout and "count-words" in shown.stdout, shown.stdout

        words = tmp_path / "input.txt"
        words.write_text("one two three four\n")
        run = server.cli("invoke", infra, "count_words", "--file", str(words))
        assert run.returncode == 0, run.stderr
        assert run.stdout == "words: 4\n"
        refused = server.cli("invoke", infra, "bad_replica")
        assert refused.returncode != 0
        assert "function 'bad_replica' is failed" in refused.stderr + refused.stdout
        unknown = server.cli("invoke", infra, "nope")
        assert unknown.returncode != 0 and "no function 'nope'" in unknown.stderr + unknown.stdout

        gone = server.cli("destroy", infra)
        assert gone.returncode == 0, gone.stderr
        assert cluster.services == {}
        assert job_containers(engine_url) == []


def test_stand_in_endpoint_replica_gets_the_job_with_its_headers(engine_url: str) -> None:
    """The stand-in's other replica kind: A posts the job to a URL with the replica's headers
    (here B's /job with B's service token), and B writes back into A's bucket."""
    from orbis.providers.oscar import OscarClient, OscarTarget

    image = os.environ["ORBIS_NODE_IMAGE"]
    script = '#!/bin/sh\ntr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/r.txt"\n'
    with oscar_cluster("edge_a", max_jobs=0) as a, oscar_cluster("edge_b") as b:
        client_b = OscarClient(OscarTarget(b.url, "oscar", b.password))
        client_b.create_service({
            "name": "rep", "image": image, "script": script,
            "storage_providers": {"minio": {"edge_a": a.minio.model_dump()}},
            "output": [{"storage_provider": "minio.edge_a", "path": "svc/out"}]})
        token = client_b.get_service("rep")["token"]
        OscarClient(OscarTarget(a.url, "oscar", a.password)).create_service({
            "name": "svc", "image": image, "script": script,
            "input": [{"storage_provider": "minio.default", "path": "svc/in"}],
            "output": [{"storage_provider": "minio.default", "path": "svc/out"}],
            "replicas": [{"type": "endpoint", "url": f"{b.url}/job/rep", "priority": 0,
                          "headers": {"Authorization": f"Bearer {token}"}}]})
        storage = s3(a)
        storage.put_object(Bucket="svc", Key="in/x.txt", Body=b"edge\n")
        assert wait_object(storage, "svc", "out/r.txt") == b"EDGE\n"
        assert [(j.state, j.where) for j in a.jobs] == [("delegated", f"{b.url}/job/rep")]
    assert job_containers(engine_url) == []
