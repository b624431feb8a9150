"""Which disks the built-in disk step prepares, and the play that runs disks.py on a node."""

from __future__ import annotations

import yaml

from orbis.configure import storage
from orbis.engine.plan import plan_configuration
from orbis.lang import load_template

GIB = 1024**3
TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - indigo_custom_types: https://raw.githubusercontent.com/indigo-dc/tosca-types/master/custom_types.yaml
topology_template:
  node_templates:
    front:
      type: tosca.nodes.Compute
      requirements:
        - local_storage:
            node: data
            relationship:
              type: tosca.relationships.AttachesTo
              properties: {location: /data, device: hdb}
        - local_storage:
            node: loose
            relationship: tosca.relationships.AttachesTo
    wn:
      type: tosca.nodes.Compute
    data:
      type: tosca.nodes.BlockStorage
      properties: {size: 10 GiB}
    loose:
      type: tosca.nodes.BlockStorage
      properties: {size: 1 GiB}
"""


def test_only_disks_with_a_mount_path_get_the_level_0_step():
    template = load_template("t.yaml", text=TEMPLATE)
    steps = plan_configuration(template)
    (disks,) = [s for s in steps if s.name.endswith("_disks")]
    assert (disks.name, disks.compute, disks.level) == ("front_disks", "front", 0)
    assert steps[0] is disks  # before every recipe
    (play,) = yaml.safe_load(disks.operations[0].inline or "")
    assert play["become"] == "{{ ansible_user != 'root' }}" and play["hosts"] == "all"
    command = play["tasks"][0]["ansible.builtin.script"]["cmd"]
    assert command.startswith("{{ orbis_scripts_dir }}/disks.py ")  # where the runner sees it
    (only,) = storage.mountable(template.computes["front"])
    assert only == {"index": 1, "size": 10 * GIB, "device": "hdb", "volume_id": None,
                    "fs_type": "ext4", "mount_path": "/data"}  # fmt: skip
    assert '"mount_path":"/data"' in command and "loose" not in command
    assert storage.mountable(template.computes["wn"]) == []
