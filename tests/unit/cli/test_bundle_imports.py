"""The CLI sends local imports inside the template: the server (which reads no local file)
then loads what the user's machine loaded."""

from pathlib import Path

import pytest

from orbis.cli.bundle import bundle
from orbis.lang import CLIENT, TemplateError, load_template

TYPES = """tosca_definitions_version: tosca_simple_yaml_1_0
imports: [https://raw.githubusercontent.com/indigo-dc/tosca-types/master/custom_types.yaml]
node_types:
  my.nodes.App:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      port: {type: integer, default: 8080}
"""
TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
imports: [types.yaml]
topology_template:
  node_templates:
    vm: {type: tosca.nodes.indigo.Compute}
    app: {type: my.nodes.App, requirements: [{host: vm}]}
"""


def test_local_imports_are_inlined_for_the_server(tmp_path: Path) -> None:
    (tmp_path / "types.yaml").write_text(TYPES)
    path = tmp_path / "t.yaml"
    path.write_text(TEMPLATE)
    template = load_template(path, sources=CLIENT)
    with pytest.raises(TemplateError, match="no such file was sent with the template"):
        load_template("t.yaml", text=TEMPLATE)  # the server, without the bundle
    sent = bundle(path, template, {})
    served = load_template("t.yaml", text=sent)
    assert served.components["app"].properties == {"port": 8080}
    assert served.computes["vm"].type == "tosca.nodes.indigo.Compute"  # the URL import kept


def test_a_local_template_file_base_is_merged_before_sending(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(TEMPLATE.replace("types.yaml", "base_types.yaml"))
    (tmp_path / "base_types.yaml").write_text(TYPES)
    path = tmp_path / "t.yaml"
    path.write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_0\nimports:\n  - template_file: base.yaml\n"
    )
    template = load_template(path, sources=CLIENT)
    served = load_template("t.yaml", text=bundle(path, template, {}))
    assert set(served.components) == {"app"} and set(served.computes) == {"vm"}


def test_a_playbook_named_by_an_implementation_artifact_travels_inline(tmp_path: Path) -> None:
    (tmp_path / "play.yml").write_text("- hosts: all\n  tasks: [{debug: {msg: hi}}]\n")
    path = tmp_path / "t.yaml"
    path.write_text("""tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    vm: {type: tosca.nodes.Compute}
    app:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: vm}]
      interfaces:
        Standard:
          configure:
            implementation: {file: play.yml, type: tosca.artifacts.Implementation.YAML}
""")
    template = load_template(path, sources=CLIENT)
    served = load_template("t.yaml", text=bundle(path, template, {}))
    [op] = served.components["app"].operations
    assert op.inline is not None and "debug" in op.inline  # the playbook's text, not a path


RELATIONS = """tosca_definitions_version: tosca_simple_yaml_1_0
relationship_types:
  my.relationships.Uses:
    derived_from: tosca.relationships.DependsOn
    interfaces:
      Configure:
        add_target: rel/type_add_target.yml
topology_template:
  relationship_templates:
    uses_db:
      type: my.relationships.Uses
      interfaces:
        Configure:
          post_configure_target: {implementation: rel/template_post_target.yml}
  node_templates:
    vm: {type: tosca.nodes.Compute}
    db:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: vm}]
    web:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: vm
        - dependency: {node: db, relationship: uses_db}
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: vm
        - dependency:
            node: db
            relationship:
              type: my.relationships.Uses
              interfaces:
                Configure:
                  pre_configure_source:
                    implementation:
                      file: rel/inline_pre_source.yml
                      type: tosca.artifacts.Implementation.YAML
"""


def test_relationship_operations_playbooks_travel_inline(tmp_path: Path) -> None:
    (tmp_path / "rel").mkdir()
    for name in ("type_add_target", "template_post_target", "inline_pre_source"):
        (tmp_path / "rel" / f"{name}.yml").write_text(
            f"- hosts: all\n  tasks: [{{debug: {{msg: {name}}}}}]\n"
        )
    path = tmp_path / "t.yaml"
    path.write_text(RELATIONS)
    template = load_template(path, sources=CLIENT)
    served = load_template("t.yaml", text=bundle(path, template, {}))
    ops = {
        (node, op.name): op
        for node in ("db", "app", "web")
        for op in served.components[node].operations
    }
    for key, name in [
        (("app", "pre_configure_source"), "inline_pre_source"),  # the requirement's own
        (("db", "post_configure_target"), "template_post_target"),  # a relationship template
        (("db", "add_target"), "type_add_target"),  # the relationship type's
    ]:
        op = ops[key]
        assert op.implementation is None and op.inline is not None, (key, op)
        assert f"msg: {name}" in op.inline  # the playbook's text, not IM's fallback URL
