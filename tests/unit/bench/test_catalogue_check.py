"""bench/catalogue_check.py: the rows a reviewer gets for a folder of templates (a holdout set)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "catalogue_check.py"
GRYCAP = "https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml"


def _bench():
    spec = importlib.util.spec_from_file_location("catalogue_check", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


FUNCTION = f"""tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - grycap: {GRYCAP}
topology_template:
  node_templates:
    fn:
      type: tosca.nodes.aisprint.FaaS.Function
      properties: {{name: fn, image: grycap/image, script: run.sh, memory: 512 MB}}
"""
BASE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  inputs:
    vms: {type: integer, default: 3}
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {count: {get_input: vms}}}
"""
ADDON = """tosca_definitions_version: tosca_simple_yaml_1_0
metadata: {parents: [cat/base.yaml]}
topology_template:
  node_templates:
    web:
      type: tosca.nodes.WebServer
      requirements: [{host: vm}]
"""
RADL_JSON = [
    {"class": "network", "id": "pub", "outbound": "yes"},
    {"class": "system", "id": "node", "net_interface.0.connection": "pub"},
    {"class": "deploy", "system": "node", "vm_number": 2},
]


def test_rows_of_a_folder_walked_like_the_dashboard_walks_its_catalogue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "fn.yaml").write_text(FUNCTION)
    (tmp_path / "cat" / "base.yaml").write_text(BASE)
    (tmp_path / "cat" / "web.yml").write_text(ADDON)  # names its base by id, in parents only
    (tmp_path / "simple.json").write_text(json.dumps(RADL_JSON))
    (tmp_path / "broken.radl").write_text("system x (\n")
    (tmp_path / ".hidden.yaml").write_text(BASE)  # skipped, as the Dashboard skips them
    (tmp_path / "cat" / "base.parameters.yml").write_text("num: 1\n")
    (tmp_path / "play.yml").write_text("- hosts: all\n  tasks: []\n")  # a playbook: no template
    bench = _bench()
    rows = {row.label: row for row in bench.check_folder(tmp_path)}
    assert set(rows) == {"fn.yaml", "cat/base.yaml", "cat/base.yaml + cat/web.yml",
                         "simple.json", "broken.radl"}  # fmt: skip
    # a standalone function is one of IM's systems and a function
    assert rows["fn.yaml"].nodes == {"fn": 1} and rows["fn.yaml"].functions == {"fn": 1}
    assert rows["cat/base.yaml + cat/web.yml"].nodes == {"vm": 3}
    assert rows["simple.json"].valid and rows["simple.json"].nodes == {"node": 2}
    assert not rows["broken.radl"].valid
    assert rows["broken.radl"].problems[0].startswith(f"{tmp_path / 'broken.radl'}:")
    assert bench.main([str(tmp_path)]) == 1  # a refused row
    out = capsys.readouterr().out
    assert "4 accepted, 1 refused of 5" in out
    assert "refused" in next(line for line in out.splitlines() if line.startswith("broken.radl"))
    # a form value reaches the templates defining that input, and only them
    rows = {row.label: row for row in bench.check_folder(tmp_path, inputs={"vms": "5"})}
    assert rows["cat/base.yaml + cat/web.yml"].nodes == {"vm": 5}
    assert rows["fn.yaml"].valid
