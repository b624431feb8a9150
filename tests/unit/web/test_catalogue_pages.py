"""The catalogue pages: cards, the add-on picker, the generated form, server-side checks with
errors next to the field or at file:line, the plan, and deploying."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orbis.web.catalogue import Catalogue
from orbis.web.forms import tabs_of

from .conftest import csrf_of, login

BASE = """tosca_definitions_version: tosca_simple_yaml_1_0
description: A base with no machines
metadata:
  display_name: Empty base
  template_name: Base
  order: 5
  childs: [extra.yaml, broken.yaml]
  tabs:
    Sizes:
      - size
      - workers
      - admin_password
      - switch
      - port: {enabled_by: switch}
    GPU: gpu_.*
    Moved: [workers]
topology_template:
  inputs:
    size: {type: string, default: small, constraints: [{valid_values: [small, large]}]}
    workers: {type: integer, default: 2, constraints: [{greater_than: 0}, {less_than: 10}]}
    admin_password: {type: string, default: pw}
    switch: {type: boolean, default: false}
    port: {type: integer, default: 80, constraints: [{in_range: [1, 65535]}]}
    gpu_model: {type: string, default: none}
    hidden_one: {type: string, default: kept}
  node_templates:
    front:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {count: 0}}
        host: {properties: {num_cpus: 2, mem_size: 2 GB}}
  outputs:
    said: {value: {get_input: size}}
"""
EXTRA = """tosca_definitions_version: tosca_simple_yaml_1_0
description: Adds a greeting
metadata:
  template_name: Extra
  parents: [base.yaml]
  tabs:
    Extra: [greeting]
topology_template:
  inputs:
    greeting: {type: string, default: hi, constraints: [{min_length: 2}]}
"""
BROKEN = """tosca_definitions_version: tosca_simple_yaml_1_0
metadata:
  template_name: Broken
  parents: [base.yaml]
topology_template:
  node_templates:
    soft:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: no_such_node
"""
SIZED = """tosca_definitions_version: tosca_simple_yaml_1_0
metadata: {display_name: Sized}
topology_template:
  inputs:
    n: {type: integer, default: 1}
  node_templates:
    wn:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {count: {get_input: n}}}
        host: {properties: {num_cpus: 2, mem_size: 2 GB}}
"""
FIRST = """tosca_definitions_version: tosca_simple_yaml_1_0
description: Ordered first
metadata: {display_name: Alpha first, order: 1}
topology_template: {}
"""


@pytest.fixture
def folder(tmp_path) -> Path:
    cat = tmp_path / "catalogue"
    (cat / "sub").mkdir(parents=True)
    (cat / "base.yaml").write_text(BASE)
    (cat / "extra.yaml").write_text(EXTRA)
    (cat / "broken.yaml").write_text(BROKEN)
    (cat / "sub" / "first.yml").write_text(FIRST)
    (cat / "sized.yaml").write_text(SIZED)
    (cat / "sub" / "playbook.yml").write_text("- hosts: all\n  tasks: []\n")
    (cat / ".hidden.yaml").write_text(FIRST)
    (cat / "x.parameters.yaml").write_text(FIRST)
    return cat


@pytest.fixture
def web(make_client, folder):
    client = make_client(catalogue_dir=folder)
    return client, login(client)


def cards(html: str) -> list[str]:
    return re.findall(r'data-testid="catalogue-card" data-id="([^"]+)"', html)


def test_cards_are_the_templates_without_parents_in_order(folder):
    entries = Catalogue(folder).entries()
    assert [e.id for e in entries if e.is_card] == ["sub/first.yml", "base.yaml", "sized.yaml"]
    assert {e.id for e in entries} == {"sub/first.yml", "base.yaml", "extra.yaml", "broken.yaml",
                                       "sized.yaml"}


def test_catalogue_page_lists_searches_and_names_add_ons(web):
    client, _ = web
    page = client.get("/ui/").text
    assert cards(page) == ["sub/first.yml", "base.yaml", "sized.yaml"]
    assert "Add-ons: Extra, Broken" in page
    assert cards(client.get("/ui/?q=alpha").text) == ["sub/first.yml"]


def test_a_base_with_add_ons_offers_them_first(web):
    client, _ = web
    page = client.get("/ui/configure?template=base.yaml").text
    assert re.findall(r'name="childs" value="([^"]+)"', page) == ["extra.yaml", "broken.yaml"]
    form = client.get("/ui/configure?template=base.yaml&picked=1&childs=extra.yaml").text
    assert "Empty base + Extra" in form


def test_add_ons_are_applied_in_the_order_of_the_base_childs(folder):
    from orbis.web.compose_form import choose

    catalogue = Catalogue(folder)
    clicked = choose(catalogue, "base.yaml", "broken.yaml,extra.yaml")  # childs: extra, broken
    assert [a.id for a in clicked.addons] == ["extra.yaml", "broken.yaml"]
    assert clicked.childs_param == "extra.yaml,broken.yaml"
    assert clicked.title == "Empty base + Extra + Broken"


def test_form_widgets_follow_types_constraints_and_tabs(folder):
    import yaml

    tabs = tabs_of(yaml.safe_load(BASE))
    assert [t.title for t in tabs] == ["Sizes", "GPU", "Moved"]
    by_name = {f.name: f for t in tabs for f in t.fields}
    assert "hidden_one" not in by_name  # in no tab: not shown, keeps its default
    assert [f.name for f in tabs[2].fields] == ["workers"]  # listed twice: the last tab wins
    assert by_name["size"].kind == "select" and by_name["size"].options == ["small", "large"]
    assert (by_name["workers"].kind, by_name["workers"].min, by_name["workers"].max) == \
        ("number", 1, 9)  # fmt: skip
    assert (by_name["port"].min, by_name["port"].max, by_name["port"].enabled_by) == \
        (1, 65535, "switch")  # fmt: skip
    assert by_name["admin_password"].kind == "password"
    assert by_name["switch"].kind == "checkbox"
    assert [f.name for f in tabs[1].fields] == ["gpu_model"]  # regex selector


def test_the_form_page_renders_labelled_controls(web):
    client, _ = web
    page = client.get("/ui/configure?template=base.yaml&childs=extra.yaml").text
    for name in ("size", "workers", "admin_password", "port", "greeting", "switch"):
        assert f'<label for="f-{name}">' in page, name
        assert f'id="f-{name}"' in page
    assert 'type="password"' in page and 'value="pw"' not in page  # never shown back
    assert 'min="1"' in page and 'max="9"' in page
    assert 'data-enabled-by="f-switch"' in page


def plan(client, token, **values):
    data = {"csrf": token, "template": "base.yaml", "childs": "extra.yaml", "size": "small",
            "workers": "2", "admin_password": "", "switch": "false", "gpu_model": "none",
            "greeting": "hello", **values}  # fmt: skip
    return client.post("/ui/plan", data=data)


def test_values_outside_their_constraints_are_shown_next_to_the_field(web):
    client, token = web
    answer = plan(client, token, workers="10", size="huge", greeting="x", switch="true",
                  port="70000")  # fmt: skip
    assert answer.status_code == 400
    errors = dict(re.findall(r'data-field="([^"]+)">([^<]+)<', answer.text))
    assert errors == {"workers": "must be at most 9", "size": "must be one of small, large",
                      "greeting": "must be at least 2 characters long",
                      "port": "must be at most 65535"}  # fmt: skip
    assert "Traceback" not in answer.text
    # a port disabled by its switch is not checked (the browser does not post it)
    assert plan(client, token, port="70000").status_code == 200


def test_the_plan_shows_nodes_sizes_and_sites(web):
    client, token = web
    form = client.get("/ui/configure?template=sized.yaml").text
    assert 'name="n"' in form  # no tabs: every input in one tab
    answer = client.post("/ui/plan", data={"csrf": token, "template": "sized.yaml", "n": "3"})
    assert answer.status_code == 200, answer.text
    row = re.search(r'<tr data-testid="plan-node">(.*?)</tr>', answer.text, re.S).group(1)
    cells = re.findall(r"<t[dh][^>]*>([^<]*)</t[dh]>", row)
    assert cells[:4] == ["wn", "3", "2", "2000 MB"]
    assert "local (Local)" in row
    assert "3 nodes to create" in answer.text


def test_deploy_from_the_plan(web):
    client, token = web
    answer = plan(client, token, infra_name="x" * 129)
    assert answer.status_code == 400 and 'data-field="infra_name">at most 128' in answer.text
    answer = plan(client, token, workers="3", infra_name="My lab")
    assert answer.status_code == 200, answer.text
    assert 'data-testid="deploy"' in answer.text
    assert 'name="workers" value="3"' in answer.text  # carried to the deploy
    deployed = client.post("/ui/deploy", data=dict(re.findall(
        r'<input type="hidden" name="([^"]+)" value="([^"]*)"', answer.text)),
        follow_redirects=False)  # fmt: skip
    assert deployed.status_code == 303
    infra_id = deployed.headers["location"].rsplit("/", 1)[-1]
    listing = client.get("/ui/infrastructures").text
    assert re.findall(r'data-testid="infra-row" data-id="([^"]+)"', listing) == [infra_id]
    assert ">My lab</a>" in listing  # the name given in the form
    page = client.get(f"/ui/infrastructures/{infra_id}").text
    assert 'data-name="said"' in page and "<code>small</code>" in page
    stored = client.get(f"/infrastructures/{infra_id}/tosca", headers={
        "Authorization": "id = im; type = InfrastructureManager; username = alice; password = a1"})
    assert "default: 3" in stored.text and "greeting" in stored.text  # values and add-on


def test_an_add_on_error_is_shown_with_its_file_and_line(web):
    client, token = web
    page = client.get("/ui/configure?template=base.yaml&childs=broken.yaml")
    data = {"csrf": csrf_of(page.text), "template": "base.yaml", "childs": "broken.yaml"}
    answer = client.post("/ui/plan", data=data)
    assert answer.status_code == 400
    assert re.search(r"<code>broken\.yaml:10:\d+</code>: .*no_such_node", answer.text)


def test_a_pasted_template_error_names_its_line(web):
    client, token = web
    text = "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n" \
        "  node_templates:\n    a:\n      type: tosca.nodes.Nope\n"  # fmt: skip
    answer = client.post("/ui/custom", data={"csrf": token, "template": text})
    assert answer.status_code == 400
    assert "template.yaml:5:13: unknown node type" in answer.text.replace("&#39;", "'")


def test_unknown_templates_and_add_ons_are_a_clear_error(web):
    client, _ = web
    for query in ("template=nope.yaml", "template=extra.yaml", "template=base.yaml&childs=zz"):
        answer = client.get(f"/ui/configure?{query}")
        assert answer.status_code == 400, query
        assert 'data-testid="error"' in answer.text


def test_icons_come_from_the_catalogue_folder_only(make_client, tmp_path):
    cat = tmp_path / "icons-cat"
    (cat / "images").mkdir(parents=True)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    (cat / "images" / "vm.png").write_bytes(png)
    (tmp_path / "secret.png").write_bytes(b"outside")
    for name, icon in [("ok.yaml", "images/vm.png"), ("out.yaml", "../secret.png"),
                       ("url.yaml", "https://example.org/x.png"), ("none.yaml", "images/no.png"),
                       ("js.yaml", "javascript:alert(1)//http"),
                       ("quote.yaml", 'http://e.org/"onerror="x')]:
        (cat / name).write_text(FIRST.replace("order: 1", f"order: 1, icon: '{icon}'"))
    client = make_client(catalogue_dir=cat)
    login(client)
    page = client.get("/ui/").text
    assert re.findall(r'<img class="icon" src="/ui/icons/([^"]+)"', page) == ["ok.yaml"]
    # an icon given as a URL is shown from there (http(s) only, attribute escaped)
    remote = re.findall(r'<img class="icon" src="(http[^"]*)"', page)
    assert remote == ["http://e.org/&#34;onerror=&#34;x", "https://example.org/x.png"]
    assert "javascript:" not in page
    assert "img-src 'self' data: https: http:" in client.get("/ui/").headers[
        "content-security-policy"]  # fmt: skip
    answer = client.get("/ui/icons/ok.yaml")
    assert answer.status_code == 200 and answer.content == png
    assert answer.headers["content-type"] == "image/png"
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    for other in ("out.yaml", "url.yaml", "none.yaml", "../secret.png"):
        assert client.get(f"/ui/icons/{other}").status_code == 404, other


TAGGED = """tosca_definitions_version: tosca_simple_yaml_1_0
metadata:
  display_name: Tagged
  tabs:
    Who:
      - contact: {tag_type: email}
      - owner: {tag_type: userid}
      - cluster_name: {tag_type: random}
      - notes: {tag_type: textarea}
topology_template:
  inputs:
    contact: {type: string, default: ""}
    owner: {type: string, default: nobody}
    cluster_name: {type: string, default: ""}
    notes: {type: string, default: ""}
  outputs:
    who: {value: {get_input: owner}}
    name: {value: {get_input: cluster_name}}
"""


def test_tag_types_email_userid_random_and_textarea(make_client, tmp_path):
    cat = tmp_path / "tagged"
    cat.mkdir()
    (cat / "tagged.yaml").write_text(TAGGED)
    client = make_client(catalogue_dir=cat)
    token = login(client)
    form = client.get("/ui/configure?template=tagged.yaml").text
    assert 'type="email"' in form and '<textarea id="f-notes"' in form
    assert re.search(r'id="f-owner"[^>]*value="alice"[^>]*readonly', form, re.S)
    random_name = re.search(r'name="cluster_name" value="(orbis-[0-9a-f]{8})"', form).group(1)
    data = {"csrf": token, "template": "tagged.yaml", "contact": "not-an-address",
            "owner": "mallory", "cluster_name": random_name, "notes": "a\nb"}  # fmt: skip
    answer = client.post("/ui/plan", data=data)
    assert answer.status_code == 400 and 'data-field="contact">must be an e-mail' in answer.text
    answer = client.post("/ui/plan", data={**data, "cluster_name": "$(boom)",
                                           "contact": "a@b.org"})  # fmt: skip
    assert answer.status_code == 400 and 'data-field="cluster_name">must match' in answer.text
    answer = client.post("/ui/deploy", data={**data, "contact": "a@b.org"},
                         follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303, answer.text
    page = client.get(answer.headers["location"]).text
    assert "<code>alice</code>" in page and "mallory" not in page  # userid: the signed-in user
    assert f"<code>{random_name}</code>" in page
