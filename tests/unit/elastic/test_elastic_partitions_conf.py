"""Several Slurm partitions (queues) per node type, end to end at unit level: from the template
(EC3's ec3_node_queues_list, TOSCA's WorkerNode `metadata.queues`) to the slurm.conf the role
renders (its real Jinja template) and the slurmd line a worker joins with (the role's and the
quick join's), read back as Slurm reads them: a worker's features pick its partitions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from orbis.elastic.join import slurmd_options
from orbis.lang import load_template
from orbis.lang.errors import TemplateError
from orbis.model.elastic import ElasticCluster
from orbis.model.infrastructure import Template

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "src" / "orbis" / "configure" / "roles" / "orbis_slurm"
EXAMPLE = ROOT / "examples" / "elastic-slurm.yaml"
INHERIT = ROOT / "tests" / "fixtures" / "elastic" / "ec3_inherit.radl"


def _jinja() -> jinja2.Environment:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["regex_replace"] = lambda text, pattern, to: re.sub(pattern, to, text)
    return env


def slurm_conf(inputs: dict[str, Any]) -> str:
    """The front-end's slurm.conf as the role renders it (defaults, then the recipe's inputs)."""
    values = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()) | inputs
    values |= {"slurm_controller": "front(10.0.0.2)", "ansible_managed": "test"}
    text = (ROLE / "templates" / "slurm-elastic.conf.j2").read_text()
    return _jinja().from_string(text).render(values)


def slurmd_line(inputs: dict[str, Any], host: str) -> str:
    """/etc/default/slurmd as the role's elastic_wn task writes it."""
    values = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()) | inputs
    tasks = yaml.safe_load((ROLE / "tasks" / "elastic_wn.yml").read_text())
    content = next(t["ansible.builtin.copy"]["content"] for t in tasks
                   if "/etc/default/slurmd" in str(t.get("ansible.builtin.copy", {})))  # fmt: skip
    return _jinja().from_string(content).render(values | {"IM_NODE_HOSTNAME": host}).strip()


def partitions_of(conf: str, features: list[str]) -> list[str]:
    """Slurm's reading: a dynamic node is in the partitions whose nodeset's feature it has."""
    sets = dict(re.findall(r"^Nodeset=(\S+) Feature=(\S+)$", conf, re.M))
    parts = re.findall(r"^PartitionName=(\S+) Nodes=(\S+) Default=(YES|NO)", conf, re.M)
    return [name for name, nodes, _ in parts if sets[nodes] in features]


def default_partition(conf: str) -> list[str]:
    return re.findall(r"^PartitionName=(\S+) .*Default=YES", conf, re.M)


def check(template: Template, front_step: str, steps: dict[str, str]) -> ElasticCluster:
    """Each pool's workers (role and quick join alike) land in their node type's partitions."""
    cluster = template.elastic
    assert cluster is not None
    conf = slurm_conf(template.components[front_step].operations[-1].inputs)
    assert default_partition(conf) == cluster.partitions()[:1]
    for pool in cluster.pools:
        inputs = template.components[steps[pool.compute]].operations[-1].inputs
        line = slurmd_line(inputs, "wn7")
        assert line == slurmd_options(cluster, pool, "wn7")  # the quick join writes the same
        features = re.search(r"Feature=([^\\\"]+)", line).group(1).split(",")  # type: ignore[union-attr]
        assert partitions_of(conf, features) == [
            p for p in cluster.partitions() if p in cluster.queues(pool)]
    return cluster


def test_ec3_queues_reach_slurm_conf_and_the_workers() -> None:
    template = load_template(INHERIT)
    cluster = check(template, "front_slurm", {"wn": "wn_slurm", "largewn": "largewn_slurm"})
    assert cluster.partitions() == ["smalljobs", "largejobs"]
    conf = slurm_conf(template.components["front_slurm"].operations[-1].inputs)
    assert "PartitionName=smalljobs Nodes=q_smalljobs Default=YES" in conf
    assert "PartitionName=largejobs Nodes=q_largejobs Default=NO" in conf


def tosca(queues_a: Any, queues_b: Any) -> str:
    doc = yaml.safe_load(EXAMPLE.read_text())
    nodes = doc["topology_template"]["node_templates"]
    if queues_a is not None:
        nodes["lrms_wn_a"]["metadata"] = {"queues": queues_a}
    if queues_b is not None:
        nodes["lrms_wn_b"]["metadata"] = {"queues": queues_b}
    return yaml.safe_dump(doc, sort_keys=False)


def test_tosca_queues_per_worker_node() -> None:
    template = load_template("elastic.yaml", text=tosca(["short"], "long, short"))
    cluster = check(template, "lrms_front", {"wn_a": "lrms_wn_a", "wn_b": "lrms_wn_b"})
    assert [p.queues for p in cluster.pools] == [("short",), ("long", "short")]
    assert cluster.partitions() == ["short", "long"]


def test_tosca_without_queues_is_one_partition() -> None:
    template = load_template(EXAMPLE)
    cluster = check(template, "lrms_front", {"wn_a": "lrms_wn_a", "wn_b": "lrms_wn_b"})
    assert cluster.partitions() == ["debug"]


@pytest.mark.parametrize("bad", [[], "a;b", ["ok", 3], "x" * 41])
def test_tosca_bad_queues_are_an_error_at_their_place(bad: Any) -> None:
    text = tosca(None, bad)
    with pytest.raises(TemplateError) as caught:
        load_template("elastic.yaml", text=text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "queues:" in t)
    # at the value: its line, or the next one for a block list
    assert re.search(rf"elastic\.yaml:({line}|{line + 1}):\d+: queues of 'lrms_wn_b' must "
                     "name 1 to 32 Slurm partitions", str(caught.value))
