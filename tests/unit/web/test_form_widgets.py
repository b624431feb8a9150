"""The IM Dashboard's widgets beyond plain fields: row editors for lists, maps and ports
(PortSpec), file uploads, masked values (password, secret) that are never written back into a
page, vo_list and access_token; each checked on the server."""

from __future__ import annotations

import re

import pytest
import yaml
from starlette.datastructures import MultiDict

from orbis.web import form_rows
from orbis.web.forms import Viewer, read_values, tabs_of

from .conftest import csrf_of, login

WIDGETS = """tosca_definitions_version: tosca_simple_yaml_1_0
metadata:
  display_name: Widgets
  tabs:
    Network: [ports, extra_ports]
    Data:
      - tags
      - labels
      - counts
      - key_file: {tag_type: file}
      - db_secret: {tag_type: secret}
      - admin_password
      - vo: {tag_type: vo_list}
      - token: {tag_type: access_token}
topology_template:
  inputs:
    ports:
      type: map
      entry_schema: {type: PortSpec}
      default:
        ssh_port: {source: 22, protocol: tcp}
        web: {source_range: [8000, 8010], protocol: tcp, remote_cidr: 10.0.0.0/8}
    extra_ports:
      type: list
      entry_schema: {type: tosca.datatypes.network.PortSpec}
      default: []
    tags: {type: list, entry_schema: {type: string}, default: [a, b]}
    labels: {type: map, entry_schema: {type: string}, default: {team: x}}
    counts: {type: list, entry_schema: {type: integer}, default: [1]}
    key_file: {type: string, default: ""}
    db_secret: {type: string, default: "default-secret"}
    admin_password: {type: string, default: ""}
    vo: {type: string, default: ""}
    token: {type: string, default: ""}
  node_templates:
    front:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {count: 0}}
  outputs:
    secret_out: {value: {get_input: db_secret}}
    file_out: {value: {get_input: key_file}}
    vo_out: {value: {get_input: vo}}
    token_out: {value: {get_input: token}}
"""
SECRET = "s3cret-never-in-a-page"
FILE = b"-----BEGIN KEY-----\nfile-content-never-in-a-page\n"


@pytest.fixture
def web(make_client, tmp_path):
    cat = tmp_path / "widgets"
    cat.mkdir()
    (cat / "widgets.yaml").write_text(WIDGETS)
    client = make_client(catalogue_dir=cat)
    return client, login(client)


def fields():
    return {f.name: f for t in tabs_of(yaml.safe_load(WIDGETS)) for f in t.fields}


def test_lists_maps_and_ports_become_row_editors_filled_from_the_default():
    by_name = fields()
    assert by_name["ports"].row_kind == "ports" and by_name["ports"].rows == [
        {"port": "22", "target": "", "protocol": "tcp", "cidr": ""},
        {"port": "8000:8010", "target": "", "protocol": "tcp", "cidr": "10.0.0.0/8"}]
    assert by_name["extra_ports"].row_kind == "ports" and by_name["extra_ports"].rows == []
    assert by_name["tags"].rows == [{"value": "a"}, {"value": "b"}]
    assert by_name["labels"].rows == [{"key": "team", "value": "x"}]
    assert (by_name["counts"].kind, by_name["counts"].entry) == ("rows", "integer")
    # entries that are themselves maps of no known type stay a YAML text area
    nested = {"type": "list", "default": [{"a": 1}]}
    assert form_rows.row_kind(nested) is None


def test_posted_rows_are_read_in_number_order_blank_ones_skipped():
    form = MultiDict([("tags[10].value", "ten"), ("tags[2].value", "two"),
                      ("tags[3].value", "  "), ("tags[x].value", "ignored")])
    assert form_rows.posted_rows(form, "tags", "list") == [{"value": "two"}, {"value": "ten"}]
    many = MultiDict([(f"tags[{i}].value", "v") for i in range(form_rows.MAX_ROWS + 1)])
    with pytest.raises(ValueError, match="at most 200 rows"):
        form_rows.posted_rows(many, "tags", "list")


def test_rows_are_checked_on_the_server():
    tabs = tabs_of(yaml.safe_load(WIDGETS))
    form = MultiDict([
        ("ports[0].port", "80"), ("ports[0].protocol", "tcp"),
        ("ports[1].port", "5000:5100"), ("ports[1].protocol", "udp"),
        ("ports[1].cidr", "1.2.3.4/24"),
        ("extra_ports[0].port", "443"), ("extra_ports[0].target", "8443"),
        ("extra_ports[0].protocol", "tcp"),
        ("tags[0].value", "x"), ("labels[0].key", "k"), ("labels[0].value", "v"),
        ("counts[0].value", "7"), ("vo", "None")])  # fmt: skip
    values, errors = read_values(tabs, form, Viewer("alice", ["vo.a"], "tok-1"))
    assert errors == {}
    assert values["ports"] == {
        "port_80": {"protocol": "tcp", "source": 80},
        "port_5000_5100_udp": {"protocol": "udp", "source_range": [5000, 5100],
                               "remote_cidr": "1.2.3.0/24"}}  # fmt: skip
    assert values["extra_ports"] == [{"protocol": "tcp", "source": 443, "target": 8443}]
    assert (values["tags"], values["labels"], values["counts"]) == (["x"], {"k": "v"}, [7])
    assert values["vo"] == "" and values["token"] == "tok-1"
    assert "db_secret" not in values  # nothing typed: the default stays
    bad = MultiDict([("ports[0].port", "70000"), ("ports[1].port", "9:1"),
                     ("extra_ports[0].port", "80"), ("extra_ports[0].cidr", "nowhere"),
                     ("labels[0].key", "k"), ("labels[1].key", "k"),
                     ("counts[0].value", "x"), ("vo", "vo.b"), ("token", "forged")])
    values, errors = read_values(tabs, bad, Viewer("alice", ["vo.a"], "tok-1"))
    assert errors == {
        "ports": "row 1: port '70000' is not a port (1-65535)",
        "extra_ports": "row 1: 'nowhere' is not a CIDR such as 10.0.0.0/8",
        "labels": "row 2: the key 'k' is given twice",
        "counts": "row 1: 'x' is not a whole number",
        "vo": "must be one of your VOs: vo.a"}
    assert values["token"] == "tok-1"  # the posted one is ignored


def test_the_form_page_has_row_editors_uploads_and_masked_boxes(web):
    client, _ = web
    page = client.get("/ui/configure?template=widgets.yaml").text
    assert 'enctype="multipart/form-data"' in page
    assert 'name="ports[1].port" value="8000:8010"' in page
    assert re.search(r'<template>.*name="ports\[__i__\]\.port"', page, re.S)
    assert 'aria-label="Port or range (a:b), ports row 1"' in page
    assert '<input type="file" id="f-key_file" name="key_file"' in page
    assert re.search(r'id="f-db_secret" name="db_secret"\s+type="password"\s+value=""', page)
    assert "default-secret" not in page
    assert '<option value="None"' in page  # vo_list: a password login has no VO
    assert 'data-testid="access-token-note"' in page


def test_masked_and_uploaded_values_travel_sealed_and_reach_the_deployment(web):
    client, token = web
    data = {"csrf": token, "template": "widgets.yaml", "db_secret": SECRET,
            "ports[0].port": "80", "ports[0].protocol": "tcp", "vo": "None",
            "counts[0].value": "oops"}  # fmt: skip
    files = {"key_file": ("id_rsa", FILE, "text/plain")}
    # another field's error: the form comes back without the secret or the file in it
    answer = client.post("/ui/plan", data=data, files=files)
    assert answer.status_code == 400 and 'data-field="counts"' in answer.text
    assert SECRET not in answer.text and "file-content-never" not in answer.text
    carried = dict(re.findall(r'name="(sealed:[^"]+)" value="([^"]+)"', answer.text))
    assert set(carried) == {"sealed:db_secret", "sealed:key_file"}
    # fixed and planned with no new upload: the sealed values are used
    answer = client.post("/ui/plan", data={**data, **carried, "db_secret": "",
                                           "counts[0].value": "3"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert SECRET not in answer.text and "file-content-never" not in answer.text
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', answer.text)
    assert "db_secret" not in dict(hidden) and "token" not in dict(hidden)
    deployed = client.post("/ui/deploy", data=dict(hidden), follow_redirects=False)
    assert deployed.status_code == 303, deployed.text
    infra = client.get(deployed.headers["location"]).text
    assert f"<code>{SECRET}</code>" in infra and "file-content-never-in-a-page" in infra
    stored = client.get(deployed.headers["location"].replace("/ui", "") + "/tosca", headers={
        "Authorization": "id = im; type = InfrastructureManager; username = alice; password = a1"})
    assert "port_80" in stored.text and "ssh_port" not in stored.text


def test_a_sealed_value_opens_only_in_its_own_session_and_field(web, make_client):
    client, token = web
    data = {"csrf": token, "template": "widgets.yaml", "db_secret": SECRET, "vo": "None",
            "counts[0].value": "oops"}  # fmt: skip
    answer = client.post("/ui/plan", data=data)
    sealed = re.search(r'name="sealed:db_secret" value="([^"]+)"', answer.text).group(1)
    moved = client.post("/ui/plan", data={**data, "db_secret": "", "counts[0].value": "1",
                                          "sealed:admin_password": sealed})  # fmt: skip
    assert 'data-field="admin_password">the value given before could not be read back' in \
        moved.text  # fmt: skip
    other = make_client(catalogue_dir=client.app.state.settings.catalogue_dir)
    other_token = login(other, "bob", "b1")
    stolen = other.post("/ui/plan", data={**data, "csrf": other_token, "db_secret": "",
                                          "counts[0].value": "1", "sealed:db_secret": sealed})
    assert stolen.status_code == 400 and 'data-field="db_secret"' in stolen.text
    assert SECRET not in stolen.text
    assert csrf_of(stolen.text) == other_token


def test_an_upload_must_be_text_within_the_limit(web):
    client, token = web
    data = {"csrf": token, "template": "widgets.yaml", "vo": "None", "counts[0].value": "1"}
    answer = client.post("/ui/plan", data=data, files={"key_file": ("k", b"\xff\xfe\x00", "x")})
    assert answer.status_code == 400
    assert 'data-field="key_file">the file must be text (UTF-8)' in answer.text


def test_a_link_fills_fields_but_never_masked_or_server_filled_ones(web):
    client, _ = web
    query = ("template=widgets.yaml&tags=%5B%22x%22%2C%22y%22%5D"
             "&ports=%7B%22p%22%3A%7B%22source%22%3A443%2C%22protocol%22%3A%22udp%22%7D%7D"
             "&counts=not-json&db_secret=from-a-link&token=from-a-link")  # fmt: skip
    page = client.get(f"/ui/configure?{query}").text
    assert 'name="tags[0].value" value="x"' in page and 'name="tags[1].value" value="y"' in page
    assert 'name="ports[0].port" value="443"' in page and 'name="ports[1].port" value=""' in page
    assert 'name="counts[0].value" value="1"' in page  # not JSON: the default stays
    assert "from-a-link" not in page
