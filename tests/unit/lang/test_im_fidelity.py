"""Templates shaped like IM's public test templates and examples, and the IM Dashboard's
catalogue, that IM accepts: Orbis accepts them too, with the node counts of IM's translation,
and says in a warning (file:line:col) what IM would do silently. Each case was a refusal once.
The fixtures in tests/fixtures/tosca/im_shapes/ imitate the shapes of IM's templates (written
for Orbis, not copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orbis.lang.compose import load_composed
from orbis.lang.errors import TemplateError
from orbis.lang.tosca import load
from orbis.lang.yaml_positions import load_yaml
from orbis.model.infrastructure import Template

ROOT = Path(__file__).resolve().parents[2] / "fixtures"
SHAPES = ROOT / "tosca" / "im_shapes"
COMPOSE = ROOT / "compose"


def counts(template: Template) -> dict[str, int]:
    """IM's systems and how many of each its translation deploys (VMs, apps, functions)."""
    return {
        **{c.name: c.count for c in template.computes.values()},
        **{a.name: a.count for a in template.containers.values()},
        **{f.name: f.count for f in template.functions.values()},
    }


def warning(template: Template, fragment: str) -> str:
    found = [w for w in template.warnings if fragment in w]
    assert found, template.warnings
    return found[0]


# 1. a required input with neither a value nor a default ----------------------------------


def test_a_required_input_without_value_is_a_warning_and_null() -> None:
    path = SHAPES / "required_input_no_value.yaml"
    template = load(path)
    assert counts(template) == {"server": 1}
    assert template.inputs["image"] is None and template.inputs["access_key"] is None
    assert template.computes["server"].image is None  # left unset, as IM leaves it
    assert template.outputs["key"].value is None
    assert warning(template, "'image'").startswith(f"{path}:13:5: required input 'image' has no")
    assert warning(template, "'access_key'").startswith(f"{path}:16:5: required input")
    assert not [w for w in template.warnings if "'comment'" in w]  # required: false: silent


def test_a_required_input_given_a_value_has_no_warning() -> None:
    template = load(SHAPES / "required_input_no_value.yaml",
                    inputs={"image": "ubuntu:24.04", "access_key": "k"})  # fmt: skip
    assert template.computes["server"].image == "ubuntu:24.04"
    assert not [w for w in template.warnings if "required input" in w]


# 2. a base's childs may offer a template that names no parents -------------------------------


def test_a_child_the_base_offers_needs_no_parents() -> None:
    template, _, smap = load_composed(COMPOSE / "base_offers.yaml",
                                      [COMPOSE / "offered_no_parents.yaml"])  # fmt: skip
    assert counts(template) == {"front": 1}
    assert template.components["monitor"].host == "front"
    assert smap.origins["node_templates"]["monitor"].endswith("offered_no_parents.yaml")


def test_a_template_without_parents_the_base_does_not_offer_is_still_refused() -> None:
    with pytest.raises(TemplateError) as info:
        load_composed(COMPOSE / "base.yaml", [COMPOSE / "offered_no_parents.yaml"])
    assert "no metadata.parents" in str(info.value)


# 3. publish_ports / expose_ports entries with only `target` ----------------------------------


def test_published_ports_with_only_a_target_use_it_as_source() -> None:
    template = load(SHAPES / "k8s_publish_target_only.yaml")
    assert counts(template) == {"grafana": 1}
    app = template.containers["grafana"]
    assert [(p.port, p.protocol, p.target) for p in app.publish_ports] == [(3000, "tcp", None)]
    assert [(p.port, p.target) for p in app.expose_ports] == [(9090, None)]
    assert app.image == "docker://grafana/grafana:latest"  # the artifact file from get_input


def test_a_port_with_neither_source_nor_target_is_refused_with_its_position() -> None:
    text = (SHAPES / "k8s_publish_target_only.yaml").read_text()
    text = text.replace(
        "                target: 3000\n", "                remote_cidr: 0.0.0.0/0\n"
    )
    with pytest.raises(TemplateError) as info:
        load("k8s.yaml", text=text)
    assert "k8s.yaml:27:15: publish_ports: each port needs a numeric 'source' or 'target'" in str(
        info.value
    )


# 4. a mapping key written twice: the later value wins (PyYAML), with a warning ----------------


def test_a_repeated_key_keeps_the_later_value_and_warns_with_both_lines() -> None:
    path = SHAPES / "duplicate_keys.yaml"
    template = load(path)
    assert counts(template) == {"front": 1, "wn": 2}  # wn_num's second default: 2
    assert template.computes["front"].num_cpus == 2
    assert warning(template, "'wn_num'") == (
        f"{path}:13:5: duplicate key 'wn_num': the value given here replaces the one at line 10 "
        "(as IM's YAML parser does)"
    )
    assert warning(template, "'num_cpus'").startswith(f"{path}:24:13: duplicate key 'num_cpus'")


def test_a_repeated_key_keeps_its_first_place_and_the_later_position() -> None:
    doc = load_yaml("a: 1\nb: 2\na: {x: 1}\n", "f.yaml")
    assert list(doc) == ["a", "b"] and doc["a"] == {"x": 1}  # as PyYAML builds the dict
    assert (doc.key_pos("a").line, doc.value_pos("a").line) == (3, 3)
    assert [str(p) for p in doc.duplicates] == [
        "f.yaml:3:1: duplicate key 'a': the value given here replaces the one at line 1 "
        "(as IM's YAML parser does)"
    ]


def test_a_repeated_key_in_an_addon_is_warned_about_in_the_composed_template(
    tmp_path: Path,
) -> None:
    base = tmp_path / "base.yaml"
    base.write_text((COMPOSE / "base_offers.yaml").read_text())
    addon = tmp_path / "offered_no_parents.yaml"
    addon.write_text(
        (COMPOSE / "offered_no_parents.yaml")
        .read_text()
        .replace(
            "  template_name: Monitoring\n", "  template_name: Monitoring\n  template_name: M\n"
        )
    )
    template, _, _ = load_composed(base, [addon])
    assert warning(template, "duplicate key 'template_name'").startswith(f"{addon}:5:3:")


# 5. a requirement that is only a node_filter --------------------------------------------------


def test_a_requirement_with_only_a_node_filter_is_ignored_with_a_warning() -> None:
    path = SHAPES / "requirement_node_filter_only.yaml"
    template = load(path)
    assert counts(template) == {"server": 1}
    web = template.components["web"]
    assert web.host == "server"
    assert [name for name, _ in web.requirements] == ["tosca.relationships.HostedOn"]
    assert warning(template, "'dependency'") == (
        f"{path}:15:11: requirement 'dependency' of node 'web' names no node, only a node_filter: "
        "ignored (IM does not select nodes by filter)"
    )


def test_a_requirement_naming_nothing_at_all_is_still_an_error() -> None:
    text = (SHAPES / "requirement_node_filter_only.yaml").read_text()
    text = text.replace(
        "            node_filter:\n", "            occurrences: [1, 1]\n            x:\n"
    )
    with pytest.raises(TemplateError) as info:
        load("r.yaml", text=text)
    assert "r.yaml:16:13: requirement 'dependency' of node 'web' names no node" in str(info.value)


# 6. an operation implementation written as an artifact definition ({file, type, repository})


def test_an_implementation_written_as_an_artifact_definition() -> None:
    template = load(SHAPES / "implementation_as_artifact.yaml")
    assert counts(template) == {"server": 1}
    ops = {op.name: op for op in template.computes["server"].operations}
    mount = ops["pre_configure_source"]
    assert mount.implementation == "https://recipes.example.org/ansible/mount_space.yml"
    assert mount.inputs == {"space_token": "a_token", "mount_point": "/mnt/data"}
    [tool] = template.components["tool"].operations
    assert tool.implementation == "https://recipes.example.org/ansible/tool.yml"


def test_an_implementation_artifact_naming_an_unknown_repository_is_refused() -> None:
    text = (SHAPES / "implementation_as_artifact.yaml").read_text()
    with pytest.raises(TemplateError) as info:
        load("impl.yaml", text=text.replace("repository: recipes", "repository: recipez"))
    assert "impl.yaml:58:15: artifact names unknown repository 'recipez'" in str(info.value)


# 7. relationship operations written under the relationship template's Standard interface ----


def test_relationship_operations_under_standard_are_run_as_im_runs_them() -> None:
    template = load(SHAPES / "relationship_ops_in_standard.yaml")
    assert counts(template) == {"head": 1, "workers": 2}
    [head_op] = template.computes["head"].operations
    assert (head_op.name, head_op.implementation) == (
        "pre_configure_source",
        "https://recipes.example.org/shared_volume.yml",
    )
    assert head_op.inputs == {"brick_dir": "/bricks", "mount_dir": "/mnt/shared", "replicas": 1}
    assert [op.name for op in template.computes["workers"].operations] == ["pre_configure_source"]


# 8. an operation input that is null: IM refuses the template --------------------------------


def test_a_null_operation_input_the_template_writes_is_refused_with_its_position() -> None:
    path = SHAPES / "required_input_no_value.yaml"
    text = path.read_text().replace(
        "  outputs:\n",
        "    tool:\n"
        "      type: tosca.nodes.SoftwareComponent\n"
        "      requirements: [ { host: server } ]\n"
        "      interfaces:\n"
        "        Standard:\n"
        "          configure:\n"
        "            implementation: https://recipes.example.org/tool.yml\n"
        "            inputs:\n"
        "              key: { get_input: access_key }\n"
        "              note: ''\n"
        "\n  outputs:\n",
    )
    with pytest.raises(TemplateError) as info:
        load("null.yaml", text=text)
    assert [str(p) for p in info.value.problems] == [
        "null.yaml:49:20: operation input 'key' of node 'tool' is null (hint: IM refuses a "
        "null operation input: give what it names a value)"
    ]  # an empty string is a value ('note'); the required input warned about is the cause
    template = load("null.yaml", text=text, inputs={"access_key": "k"})
    assert template.components["tool"].operations[0].inputs == {"key": "k", "note": ""}


def test_a_null_operation_input_a_type_supplies_is_a_warning() -> None:
    # grycap's Kubernetes front-end type writes `value: ""` (not `default`) for admin_token,
    # which its own configure operation passes on: the user's template is not at fault
    text = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - grycap: https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml
topology_template:
  node_templates:
    fe:
      type: tosca.nodes.indigo.LRMS.FrontEnd.Kubernetes
      requirements: [ { host: front } ]
    front:
      type: tosca.nodes.indigo.Compute
"""
    template = load("k8s.yaml", text=text)
    assert warning(template, "'kube_admin_token'") == (
        "k8s.yaml:6:5: operation input 'kube_admin_token' of node 'fe' is null (set by its type; "
        "IM would refuse it)"
    )
