"""The quick join (elastic/join.py): the command a new worker gets, which must write what the
orbis_slurm role writes (so the role's later run changes nothing), keep the munge key off the
command line, and run only for pools whose Slurm recipe is Orbis's alone."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from orbis.elastic import join
from orbis.lang import load_template
from orbis.model.elastic import ElasticCluster, WorkerPool

ROLE = Path(__file__).resolve().parents[3] / "src/orbis/configure/roles/orbis_slurm"
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "elastic-slurm.yaml"


def test_slurmd_options_are_the_roles() -> None:
    cluster = ElasticCluster("ec", "slurm", "front", [], partition="debug")
    pool = WorkerPool("wn_a", 0, 2, 2, 700, queues=("short", "long"))
    assert join.slurmd_options(cluster, pool, "wn-a-3") == (
        'SLURMD_OPTIONS="-Z -N wn-a-3 --conf \\"CPUs=2 RealMemory=700 '
        'Feature=elastic,q_short,q_long\\""')
    tasks = (ROLE / "tasks" / "elastic_wn.yml").read_text()
    # the role's line, with the same pieces in the same order
    assert ('SLURMD_OPTIONS="-Z -N {{ IM_NODE_HOSTNAME }} --conf \\"CPUs={{ slurm_wn_cpus }} '
            'RealMemory={{ slurm_wn_memory }} Feature=') in tasks


def test_the_key_goes_on_stdin_and_names_are_quoted() -> None:
    cluster = ElasticCluster("ec", "slurm", "front", [])
    command = join.worker_command(cluster, WorkerPool("wn"), "wn-1", "203.0.113.7", sudo=True)
    assert command.startswith("sudo -n env PUBLIC=203.0.113.7 OPTIONS=")
    assert "read -r key" in command and "munge.key" in command
    key = base64.b64encode(b"\x00secret").decode()
    files = join.front_files(f"{key}\n{base64.b64encode(b'ClusterName=x').decode()}\n")
    assert files.splitlines()[0] == key and key not in command
    with pytest.raises(ValueError):
        join.front_files("base64: /etc/munge/munge.key: No such file or directory\n\n")


def test_quick_join_only_without_recipes_of_the_users() -> None:
    cluster = load_template(EXAMPLE).elastic
    assert cluster is not None and [p.quick_join for p in cluster.pools] == [True, True]
    doc = yaml.safe_load(EXAMPLE.read_text())
    nodes = doc["topology_template"]["node_templates"]
    nodes["wn_b"]["interfaces"] = {"Standard": {"configure": {"implementation": "mine.yml"}}}
    nodes["lrms_wn_a"]["interfaces"] = {"Standard": {"configure": "slurm_mine.yml"}}
    text = yaml.safe_dump(doc)
    cluster = load_template(EXAMPLE.parent / "x.yaml", text=text).elastic
    assert cluster is not None and [p.quick_join for p in cluster.pools] == [False, False]
