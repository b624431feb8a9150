"""node_filter applied to Compute sizing and image (as IM does); substitution_mappings,
workflows and occurrences warned about by name instead of dropped silently."""

from __future__ import annotations

from orbis.lang.tosca import load

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host:
            node: vm
            node_filter:
              capabilities:
                - host:
                    properties:
                      - num_cpus: {in_range: [2, 8]}
                      - mem_size: {greater_or_equal: 4 GB}
                - os:
                    properties:
                      - distribution: ubuntu
    vm:
      type: tosca.nodes.Compute
      node_filter:
        capabilities:
          - os: {properties: {image: {equal: "docker://ubuntu:22.04"}}}
          - host: {properties: {disk_size: {less_than: 100 GB}}}
      capabilities:
        host: {properties: {mem_size: 2 GB}}
"""


def test_node_filters_size_and_choose_the_image_where_the_template_is_silent() -> None:
    vm = load("t.yaml", text=TEMPLATE).computes["vm"]
    assert vm.num_cpus == 2  # the lowest the requirement's filter accepts
    assert vm.mem_size == 2 * 10**9  # written on the node itself: the filter does not override
    assert vm.os_distribution == "ubuntu"
    assert vm.image == "docker://ubuntu:22.04"  # the node's own node_filter
    assert vm.disk_size is None  # a maximum only picks nothing


def test_ignored_sections_are_named_in_warnings() -> None:
    text = TEMPLATE.replace("topology_template:\n", """topology_template:
  substitution_mappings: {node_type: tosca.nodes.Compute}
  workflows: {deploy: {steps: {}}}
""").replace("            node: vm\n", "            node: vm\n            occurrences: [1, 1]\n")
    warnings = load("t.yaml", text=text).warnings
    assert any("t.yaml:3:3: topology_template.substitution_mappings is ignored" in w
               for w in warnings), warnings  # fmt: skip
    assert any("t.yaml:4:3: topology_template.workflows is ignored" in w for w in warnings)
    assert any("node 'app': occurrences of requirement 'host' are ignored" in w for w in warnings)
