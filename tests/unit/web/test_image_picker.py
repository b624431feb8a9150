"""The image picker: the images of the sites the chosen credentials reach, offered in the form;
a posted image checked against them on the server, then written into every compute node that
names none (the plan already places the nodes with it)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import yaml
from fastapi.testclient import TestClient

from orbis import config
from orbis.api.app import create_app
from orbis.providers.base import Image
from orbis.testing.app_clients import NoMachines
from orbis.web.image_picker import with_image

from .conftest import ALICE, login

IMAGE = "docker://orbis-node:picked"
TWO = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - indigo_custom_types: https://raw.githubusercontent.com/indigo-dc/tosca-types/master/custom_types.yaml
metadata: {display_name: Two nodes}
topology_template:
  node_templates:
    front:
      type: tosca.nodes.indigo.Compute
      capabilities:
        scalable: {properties: {count: 0}}
    own:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {count: 0}}
        os: {properties: {image: "docker://kept:1"}}
    soft:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: front}]
"""


class WithImages(NoMachines):
    """A cloud with nothing running and two images on offer."""

    def images(self) -> list[Image]:
        return [Image("a", "Picked <image>", IMAGE), Image("b", "Other", "docker://other:2")]


@pytest.fixture
def web(tmp_path):
    cat = tmp_path / "cat"
    cat.mkdir()
    (cat / "two.yaml").write_text(TWO)
    settings = replace(config.load(), home=tmp_path, db_url=f"sqlite:///{tmp_path / 'db'}",
                       catalogue_dir=cat)  # fmt: skip
    with TestClient(create_app(settings, WithImages())) as client:
        yield client, login(client)


def test_the_form_offers_the_images_of_the_sites(web):
    client, _ = web
    form = client.get("/ui/configure?template=two.yaml").text
    assert '<label for="image">' in form and 'data-images="/ui/images"' in form
    options = re.findall(r'<option value="(docker://[^"]+)"[^>]*>([^<]+)<', form)
    assert options == [(IMAGE, "Picked &lt;image&gt;"), ("docker://other:2", "Other")]
    fragment = client.get(f"/ui/images?credential=&image={IMAGE}").text
    assert f'<option value="{IMAGE}" selected>' in fragment


def test_a_chosen_image_is_checked_then_given_to_the_nodes_that_name_none(web):
    client, token = web
    data = {"csrf": token, "template": "two.yaml", "credential": "", "image": "docker://evil:1"}
    answer = client.post("/ui/plan", data=data)
    assert answer.status_code == 400
    assert 'data-field="image">not an image of the sites these credentials reach' in answer.text
    answer = client.post("/ui/plan", data={**data, "image": IMAGE})
    assert answer.status_code == 200, answer.text
    assert f"<code>{IMAGE}</code>" in answer.text
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', answer.text))
    assert hidden["image"] == IMAGE
    deployed = client.post("/ui/deploy", data=hidden, follow_redirects=False)
    assert deployed.status_code == 303, deployed.text
    infra_id = deployed.headers["location"].rsplit("/", 1)[-1]
    stored = client.get(f"/infrastructures/{infra_id}/tosca", headers={"Authorization": ALICE})
    nodes = yaml.safe_load(stored.text)["topology_template"]["node_templates"]
    assert nodes["front"]["capabilities"]["os"]["properties"]["image"] == IMAGE
    assert nodes["own"]["capabilities"]["os"]["properties"]["image"] == "docker://kept:1"
    assert "capabilities" not in nodes["soft"]


class Broken(NoMachines):
    def images(self) -> list[Image]:
        raise RuntimeError("the engine is down")


def test_a_back_end_that_cannot_list_images_still_shows_the_form(tmp_path):
    settings = replace(config.load(), home=tmp_path, db_url=f"sqlite:///{tmp_path / 'db'}")
    with TestClient(create_app(settings, Broken())) as client:
        login(client)
        form = client.get("/ui/configure?template=vm.yaml&picked=1")
        assert form.status_code == 200 and "images not listed" in form.text
        fragment = client.get("/ui/images?credential=")
        assert fragment.status_code == 200 and "images not listed" in fragment.text


def test_with_image_leaves_named_images_and_other_nodes_alone():
    out = yaml.safe_load(with_image(TWO, IMAGE))["topology_template"]["node_templates"]
    assert out["front"]["capabilities"]["os"]["properties"]["image"] == IMAGE
    assert out["own"]["capabilities"]["os"]["properties"]["image"] == "docker://kept:1"
    assert "capabilities" not in out["soft"]
