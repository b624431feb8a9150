"""Broken templates: each problem must carry the exact position and a precise message."""

from pathlib import Path

import pytest

from orbis.lang.errors import Problem, TemplateError
from orbis.lang.tosca import load

BROKEN = Path(__file__).resolve().parents[2] / "fixtures" / "tosca" / "broken"

CASES = [
    ("invalid_yaml.yaml", 6, 6, "invalid YAML: did not find expected key", ""),
    ("not_mapping.yaml", 1, 1, "a TOSCA template must be a YAML mapping", ""),
    ("missing_version.yaml", 1, 1, "missing tosca_definitions_version", "tosca_simple_yaml_1_0"),
    ("unknown_version.yaml", 1, 28, "unknown tosca_definitions_version 'tosca_simple_yaml_1_5'",
     "tosca_simple_yaml_1_3"),
    ("unknown_node_type.yaml", 5, 13, "unknown node type 'tosca.nodes.Compte'",
     "did you mean 'tosca.nodes.Compute'?"),
    ("unknown_capability.yaml", 9, 9, "unknown capability 'hots' of node 'vm'",
     "did you mean 'host'?"),
    ("unknown_cap_property.yaml", 9, 13, "unknown property 'num_cpu' of capability 'host'",
     "did you mean 'num_cpus'?"),
    ("input_wrong_type.yaml", 6, 16, "input 'cpus': 'two' is not an integer", ""),
    ("undefined_get_input.yaml", 13, 23, "get_input of undefined input 'num_cpu'",
     "did you mean 'num_cpus'?"),
    ("unknown_function.yaml", 8, 14, "unknown function 'get_atribute'",
     "did you mean 'get_attribute'?"),
    ("malformed_get_attribute.yaml", 8, 14,
     "get_attribute needs a list [node, attribute, ...], got 1", ""),
    ("get_attribute_unknown_node.yaml", 8, 56, "unknown node 'sever'", "did you mean 'server'?"),
    ("requirement_unknown_node.yaml", 9, 17,
     "requirement 'host' of node 'web' names unknown node 'severe'", "did you mean 'server'?"),
    ("hosted_cycle.yaml", 11, 11, "HostedOn cycle: a -> b -> a", ""),
    ("unknown_import.yaml", 3, 5,
     "cannot import 'https://example.invalid/my/custom_types.yaml': cannot resolve",
     "ORBIS_ARTIFACT_MAP"),
    ("bad_mem_size.yaml", 9, 23, "'4 GBytes' is not a scalar-unit.size", ""),
    ("unknown_property.yaml", 9, 9, "unknown property 'usr' of node 'db'", "did you mean 'user'?"),
    ("unknown_relationship.yaml", 11, 27,
     "unknown relationship type 'tosca.relationships.HostedOnn'", "HostedOn"),
    ("unknown_operation.yaml", 8, 11, "unknown operation 'configur'", "did you mean 'configure'?"),
    ("token_args.yaml", 8, 14, "token needs a list [string, separator, index], got 2", ""),
    # issue 3: the whole IM dialect
    ("port_unknown_network.yaml", 10, 11,
     "port 'port' is linked to 'other', which is not a defined network", ""),
    ("container_no_image.yaml", 5, 5, "container 'app' has no image artifact",
     "tosca.artifacts.Deployment.Image.Container.Docker"),
    ("proxy_without_credential.yaml", 8, 21,
     "network 'net': proxy_host needs a proxy_credential with a 'user'", "proxy_credential"),
    ("placement_cloud_not_string.yaml", 9, 21, "policy 'here': cloud_id must be a string",
     "auth data"),
    ("policy_unknown_target.yaml", 8, 19, "policy target 'sever' is neither a node nor a group",
     "did you mean 'server'?"),
    ("policy_unknown_type.yaml", 7, 15, "unknown policy type 'tosca.policies.Placment'",
     "did you mean 'tosca.policies.Placement'?"),
    ("group_unknown_member.yaml", 8, 21, "group 'g' names unknown node 'wm'", ""),
    ("credential_without_user.yaml", 10, 25, "os.credential needs a 'user'", "{user: ..."),
    ("tags_not_map.yaml", 8, 15, "property 'tags' of node 'vm'", ""),
    ("container_bad_volume.yaml", 15, 22,
     "volume 'nodisk:/data' of 'rt' must be '<BlockStorage node>:<mount path>'", ""),
    ("function_count_two.yaml", 11, 20, "'fn' can only have count 0 or 1, got 2", ""),
    ("template_file_missing.yaml", 3, 20, "template_file 'nowhere/base.yaml' not found offline",
     "ORBIS_TOSCA_TEMPLATES"),
    ("join_not_list.yaml", 7, 14, "join needs [list of values, (separator)]", ""),
    ("source_outside_relationship.yaml", 7, 31,
     "SOURCE is only meaningful in a relationship operation", ""),
]  # fmt: skip


def _problems(name: str) -> list[Problem]:
    with pytest.raises(TemplateError) as info:
        load(BROKEN / name)
    return info.value.problems


@pytest.mark.parametrize(("name", "line", "col", "message", "hint"), CASES)
def test_broken_template(name: str, line: int, col: int, message: str, hint: str) -> None:
    first = _problems(name)[0]
    assert first.position is not None
    assert (first.position.line, first.position.col) == (line, col)
    assert first.position.file.endswith(name)
    assert message in first.message
    assert hint in first.hint


def test_rendering_is_file_line_col_message_hint() -> None:
    text = (BROKEN / "unknown_node_type.yaml").read_text()
    with pytest.raises(TemplateError) as info:
        load("hello.yaml", text=text)
    assert str(info.value) == (
        "hello.yaml:5:13: unknown node type 'tosca.nodes.Compte' "
        "(hint: did you mean 'tosca.nodes.Compute'?)"
    )


def test_several_problems_are_collected() -> None:
    problems = _problems("several.yaml")
    assert [(p.position.line, p.position.col) for p in problems if p.position] == [(5, 13), (9, 17)]
    assert "unknown node 'nowhere'" in problems[1].message


def test_both_constraint_violations_of_given_values_reported() -> None:
    with pytest.raises(TemplateError) as info:
        load(BROKEN / "input_constraint.yaml", inputs={"cpus": "64", "flavour": "huge"})
    problems = info.value.problems
    assert len(problems) == 2
    assert "(given on the command line): 64 does not satisfy in_range" in problems[0].message
    assert problems[0].hint == "constraint declared at line 8"
    assert "'huge' does not satisfy valid_values" in problems[1].message


def test_defaults_outside_their_constraints_are_warnings_as_in_im() -> None:
    # IM deploys such templates (an HTCondor one defaults to '1 GB' outside its valid_values)
    warnings = load(BROKEN / "input_constraint.yaml").warnings
    where = f"{BROKEN / 'input_constraint.yaml'}:6:16"
    expected = f"{where}: input 'cpus': the default 64 does not satisfy in_range"
    assert any(w.startswith(expected) for w in warnings), warnings
    assert any(":11:16: input 'flavour': the default 'huge'" in w for w in warnings), warnings


def test_both_unknown_capability_properties_reported() -> None:
    problems = _problems("unknown_cap_property.yaml")
    assert [p.hint for p in problems] == [
        "did you mean 'num_cpus'?",
        "did you mean 'distribution'?",
    ]


def test_unreadable_file() -> None:
    with pytest.raises(TemplateError, match="cannot read template"):
        load("/nonexistent/t.yaml")


def test_empty_document() -> None:
    with pytest.raises(TemplateError, match="1:1: a TOSCA template must be a YAML mapping"):
        load("empty.yaml", text="")


def test_unknown_top_level_key() -> None:
    text = "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_templat: {}\n"
    with pytest.raises(TemplateError) as info:
        load("t.yaml", text=text)
    first = info.value.problems[0]
    assert str(first) == (
        "t.yaml:2:1: unknown top-level key 'topology_templat' "
        "(hint: did you mean 'topology_template'?)"
    )


def test_self_in_outputs_is_rejected() -> None:
    text = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    vm: {type: tosca.nodes.Compute}
  outputs:
    ip: {value: {get_attribute: [SELF, public_address]}}
"""
    with pytest.raises(TemplateError, match="6:34: SELF can only be used inside a node template"):
        load("t.yaml", text=text)


def test_get_property_unknown_property() -> None:
    text = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    vm: {type: tosca.nodes.Compute}
    db:
      type: tosca.nodes.DBMS
      properties: {root_password: x}
      requirements: [{host: vm}]
  outputs:
    pw: {value: {get_property: [db, root_pasword]}}
"""
    with pytest.raises(TemplateError) as info:
        load("t.yaml", text=text)
    assert str(info.value) == (
        "t.yaml:10:17: get_property: node 'db' has no property 'root_pasword' "
        "(hint: did you mean 'root_password'?)"
    )


def test_indigo_properties_on_normative_compute_are_accepted_with_a_warning() -> None:
    text = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilities:
        os: {properties: {image: ubuntu}}
        scalable: {properties: {count: 3}}
"""
    template = load("t.yaml", text=text)
    assert template.computes["vm"].image == "ubuntu"
    assert template.computes["vm"].count == 3
    assert any("t.yaml:7:27" in w and "tosca.nodes.indigo.Compute" in w for w in template.warnings)


def test_unknown_capability_property_on_normative_compute_is_still_an_error() -> None:
    text = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilities:
        os: {properties: {imag: ubuntu}}
"""
    with pytest.raises(TemplateError) as info:
        load("t.yaml", text=text)
    [problem] = info.value.problems
    assert problem.message.startswith("unknown property 'imag' of capability 'os'")
    assert problem.position is not None and (problem.position.line, problem.position.col) == (7, 27)


def test_default_instances_out_of_range() -> None:
    text = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties:
            default_instances: 3
"""
    with pytest.raises(TemplateError, match="9:32: scalable.default_instances 3 is not between"):
        load("t.yaml", text=text)
