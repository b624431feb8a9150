"""Imported by the parse workers' forkserver only (parse_pool.PRELOAD): parsing one small
template of each language loads the modules and the shipped TOSCA types once, and every
worker forked afterwards starts with them in memory."""

from orbis.service.parse_jobs import parse

parse("tosca_definitions_version: tosca_simple_yaml_1_0\nimports:\n"
      "  - indigo_custom_types: https://raw.githubusercontent.com/indigo-dc/tosca-types/master/"
      "custom_types.yaml\ntopology_template:\n  node_templates:\n"
      "    vm: {type: tosca.nodes.indigo.Compute}\n", "warm.yaml")  # fmt: skip
parse("system vm (cpu.count >= 1)\ndeploy vm 1\n", "warm.radl")
