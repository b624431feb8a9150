"""`POST /orbis/plan?sites=yes` (and `orbis plan --sites`): where each node would go, before
anything is made, from the sites' real catalogues: an OpenStack site (the stand-in) and AWS
EC2 (moto's server). A node too big for every OpenStack flavor goes to EC2; a node whose image
lives on that OpenStack can only go there; an unsupported cloud type is excluded with the
reason. Nothing is created at either site."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from orbis import config
from orbis.api.app import create_app
from orbis.providers.sim import SimProvider
from orbis.testing.server import orbis_server
from orbis.testing.standins.moto import moto_server
from orbis.testing.standins.openstack import OpenStackStandin

IMAGE = "6e1f2a3b-0000-4000-8000-000000000001"  # the stand-in's Ubuntu 22.04
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"


def template(host: str) -> str:
    return f"""tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    big:
      type: tosca.nodes.Compute
      capabilities:
        host: {{properties: {{num_cpus: 64, mem_size: 128 GB}}}}
        os: {{properties: {{distribution: ubuntu}}}}
    small:
      type: tosca.nodes.Compute
      capabilities:
        host: {{properties: {{num_cpus: 1, mem_size: 1 GB}}}}
        os: {{properties: {{image: "ost://{host}/{IMAGE}"}}}}
"""


def line(fields: dict[str, str]) -> str:
    return "; ".join(f"{k} = {v}" for k, v in fields.items())


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with moto_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", url)
        yield url


def test_the_plan_says_where_each_node_would_go_and_why_not_elsewhere(aws, tmp_path):
    settings = replace(config.load(), home=tmp_path, db_url=f"sqlite:///{tmp_path / 'db'}")
    with OpenStackStandin() as cloud, TestClient(
        create_app(settings, SimProvider(tmp_path / "local.db", latency=0.0))
    ) as client:
        auth = "\\n".join([ALICE, line(cloud.auth_line()),
                           "id = aws; type = EC2; username = AK; password = SK; region = us-east-1",
                           "id = one; type = OpenNebula; host = one.example"])  # fmt: skip
        host = cloud.url.split("://", 1)[1].split(":")[0]
        headers = {"Authorization": auth, "Content-Type": "text/yaml"}
        answer = client.post("/orbis/plan?sites=yes", content=template(host), headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["summary"]["create"] == 2
        nodes = {n["node"]: n for n in body["placement"]["nodes"]}
        big, small = nodes["big"], nodes["small"]
        assert [s["id"] for s in big["sites"]] == ["aws"]
        assert big["sites"][0]["flavor"] and big["sites"][0]["checked"]
        assert big["excluded"]["standin"].startswith("no flavor fits big (closest: ")
        assert "not supported" in big["excluded"]["one"]
        assert [(s["id"], s["flavor"]) for s in small["sites"]] == [("standin", "m1.small")]
        assert small["excluded"]["aws"] == f"image ost://{host}/{IMAGE} is for openstack clouds"
        assert cloud.servers == {} and client.get(
            "/infrastructures", headers={"Authorization": ALICE}).text == ""  # fmt: skip
        plain = client.post("/orbis/plan", content=template(host), headers=headers)
        assert "placement" not in plain.json()  # only when asked: it reads the clouds


def test_orbis_plan_sites_prints_the_choice(monkeypatch, tmp_path):
    monkeypatch.setenv("ORBIS_PROVIDER", "sim")
    with OpenStackStandin() as cloud, orbis_server() as server:
        with server.auth_file.open("a") as auth:
            auth.write(line(cloud.auth_line()) + "\n")
        host = cloud.url.split("://", 1)[1].split(":")[0]
        (tmp_path / "t.yaml").write_text(template(host))
        shown = server.cli("plan", str(tmp_path / "t.yaml"), "--sites")
        assert shown.returncode == 0, shown.stderr
        text = " ".join(shown.stdout.split())
        assert "2 to create, 0 to change, 0 to remove" in text
        assert "standin (m1.small)" in text and "no flavor fits big" in text
        assert "none" in text  # big has no candidate site here
        assert cloud.servers == {}
