"""Catalogue rules of the IM Dashboard beyond cards and add-ons: templates tagged `Container`
deploy with Kubernetes credentials only, and tags the operator hides (IM's HIDE_TOSCA_TAGS)
keep their templates out of the catalogue."""

from __future__ import annotations

import re

from .conftest import login

CARD = """tosca_definitions_version: tosca_simple_yaml_1_0
metadata: {display_name: %s, tag: %s}
topology_template: {}
"""


def test_a_container_template_deploys_with_kubernetes_credentials_only(make_client, tmp_path):
    cat = tmp_path / "cat"
    cat.mkdir()
    (cat / "app.yaml").write_text(CARD % ("An app", "Container"))
    (cat / "vm.yaml").write_text(CARD % ("A VM", "VM"))
    client = make_client(catalogue_dir=cat)
    token = login(client)
    for label, kind, fields in [("k8s", "Kubernetes", {"host": "https://k8s.example.org",
                                                       "token": "t" * 20}),
                                ("ost", "OpenStack", {"host": "https://ost.example.org",
                                                      "username": "u", "password": "p",
                                                      "tenant": "t"})]:  # fmt: skip
        answer = client.post("/ui/credentials", data={"csrf": token, "label": label,
                                                      "type": kind, **fields})  # fmt: skip
        assert answer.status_code in (200, 303), answer.text
    page = client.get("/ui/credentials").text
    ids = dict(re.findall(r'<option value="(\d+)"[^>]*>(\w+) \(', client.get(
        "/ui/configure?template=vm.yaml").text))  # fmt: skip
    assert set(ids.values()) == {"k8s", "ost"}, page
    offered = re.findall(r'<option value="(\d+)"[^>]*>(\w+) \(',
                         client.get("/ui/configure?template=app.yaml").text)
    assert [name for _, name in offered] == ["k8s"]
    ost = next(i for i, name in ids.items() if name == "ost")
    answer = client.post("/ui/plan", data={"csrf": token, "template": "app.yaml",
                                           "credential": ost})  # fmt: skip
    assert answer.status_code == 400
    assert 'data-field="credential">this template runs containers' in answer.text


def test_hidden_tags_keep_templates_out(make_client, tmp_path):
    cat = tmp_path / "cat"
    cat.mkdir()
    (cat / "old.yaml").write_text(CARD % ("Old", "deprecated"))
    (cat / "new.yaml").write_text(CARD % ("New", "VM"))
    client = make_client(catalogue_dir=cat, catalogue_hide_tags=("deprecated", "devel"))
    login(client)
    cards = re.findall(r'data-testid="catalogue-card" data-id="([^"]+)"', client.get("/ui/").text)
    assert cards == ["new.yaml"]
    assert client.get("/ui/configure?template=old.yaml").status_code == 400
