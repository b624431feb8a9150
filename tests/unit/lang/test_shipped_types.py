"""Every node type of the shipped type sets loads (or fails with a TemplateError, never a crash)."""

import pytest

from orbis.lang.errors import TemplateError
from orbis.lang.tosca import load
from orbis.lang.tosca.registry import SHIPPED_FILES, shipped_registry

URLS = {
    "indigo": "https://raw.githubusercontent.com/indigo-dc/tosca-types/master/custom_types.yaml",
    "grycap": "https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml",
    "ec3": "https://raw.githubusercontent.com/grycap/ec3/tosca/tosca/custom_types.yaml",
    "ec3_ha": "https://raw.githubusercontent.com/grycap/ec3/tosca_ha/tosca/custom_types.yaml",
}


@pytest.mark.parametrize("key", [k for k in SHIPPED_FILES if k != "normative"])
def test_every_node_type_loads(key: str) -> None:
    registry = shipped_registry((key,))
    failures = []
    for type_name in registry.names("node_types"):
        required = [
            name
            for name, d in registry.merged("node_types", type_name, "properties").items()
            if isinstance(d, dict) and d.get("required", True) is True and "default" not in d
        ]
        props = "{" + ", ".join(f"{p}: x" for p in required) + "}"
        text = f"""tosca_definitions_version: tosca_simple_yaml_1_0
imports: [{URLS[key]}]
topology_template:
  node_templates:
    vm: {{type: tosca.nodes.indigo.Compute}}
    node:
      type: {type_name}
      properties: {props}
      requirements: [{{host: vm}}]
"""
        try:
            load("t.yaml", text=text)
        except TemplateError as err:
            failures.append(f"{type_name}: {err}")
    # Placeholders ('x') may have the wrong type, but nothing may crash; most types load.
    assert len(failures) < len(registry.names("node_types")) / 3, "\n".join(failures)
