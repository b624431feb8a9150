"""EC3's heterogeneous clusters and the policy knobs in RADL: `ec3_node_type` (a worker node
type, or 'front'), `ec3_node_queues_list` (the Slurm partitions a node type serves, and so the
node type powered on for a partition's demand), and `ec3_idle_time`... on the front-end."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orbis.elastic.policy import History, Worker, decide
from orbis.elastic.slurm import SlurmJob
from orbis.lang import load_template
from orbis.lang.errors import TemplateError
from orbis.model.elastic import ElasticCluster, Knobs, WorkerPool

HYBRID = Path(__file__).resolve().parents[2] / "fixtures" / "elastic" / "ec3_hybrid.radl"
TOSCA = Path(__file__).resolve().parents[3] / "examples" / "elastic-slurm.yaml"

HETERO = """network public (outbound = 'yes')
network private ()
system head (
  ec3_node_type = 'front' and
  ec3_idle_time = 60 and
  ec3_max_booting = 4 and
  ec3_cooldown = 10 and
  ec3_warm_spares = 1 and
  ec3_join_retries = 5 and
  ec3_poll = 2 and
  net_interface.0.connection = 'public' and
  net_interface.1.connection = 'private'
)
system wn (
  ec3_max_instances = 6 and
  ec3_node_type = 'wn' and
  ec3_node_queues_list = 'smalljobs' and
  ec3_node_pattern = 'wn[1,2,3]' and
  cpu.count = 4 and
  memory.size >= 2048M and
  net_interface.0.connection = 'private'
)
system largewn (
  ec3_node_type = 'wn' and
  ec3_node_queues_list = 'largejobs,smalljobs' and
  cpu.count = 8 and
  memory.size >= 4096M and
  net_interface.0.connection = 'private'
)
deploy head 1
"""


def load(text: str) -> ElasticCluster:
    elastic = load_template("ec3.radl", text=text).elastic
    assert elastic is not None
    return elastic


def error(text: str) -> str:
    with pytest.raises(TemplateError) as caught:
        load_template("ec3.radl", text=text)
    return str(caught.value)


def test_node_types_queues_and_knobs_are_read() -> None:
    cluster = load(HETERO)
    assert cluster.front == "head"  # ec3_node_type = 'front', not the name
    assert [(p.compute, p.max, p.cpus, p.queues) for p in cluster.pools] == [
        ("wn", 3, 4, ("smalljobs",)),  # 6, or the 3 names of its pattern
        ("largewn", 1024, 8, ("largejobs", "smalljobs")),  # no ec3_max_instances: no limit
    ]  # of its own (Slurm's MaxNodeCount; the node quotas apply)
    assert cluster.partitions() == ["smalljobs", "largejobs"]  # the first is the default
    assert cluster.knobs == Knobs(idle_time=60, max_booting=4, cooldown=10, warm_spares=1,
                                  join_retries=5, poll=2)  # fmt: skip


def test_the_recipes_get_the_partitions() -> None:
    template = load_template("ec3.radl", text=HETERO)
    front = template.components["head_slurm"].operations[0].inputs
    assert front["slurm_partitions"] == ["smalljobs", "largejobs"]
    large = template.components["largewn_slurm"].operations[0].inputs
    assert large["slurm_wn_queues"] == ["largejobs", "smalljobs"]
    # without queues: the cluster's one partition
    plain = load_template("ec3.radl", text=HYBRID.read_text())
    assert plain.components["wn_slurm"].operations[0].inputs["slurm_wn_queues"] == ["debug"]
    assert plain.components["front_slurm"].operations[0].inputs["slurm_partitions"] == ["debug"]


def test_ec3_if_fail_empty_means_none() -> None:
    text = HYBRID.read_text().replace("system wn_b (\n", "system wn_b (\n  ec3_if_fail = '' and\n")
    assert [p.compute for p in load(text).pools] == ["wn", "wn_b"]


@pytest.mark.parametrize(("written", "bad", "expected"), [
    ("ec3_poll = 2", "ec3_poll = 0", "ec3.radl:10:3: ec3_poll of 'head' must be between 1 and "
                                     "3600"),  # a busy loop reading Slurm
    ("ec3_idle_time = 60", "ec3_idle_time = 'soon'",
     "ec3.radl:5:3: ec3_idle_time of 'head' must be a number"),
    ("ec3_max_booting = 4", "ec3_max_booting = 5000",
     "ec3.radl:6:3: ec3_max_booting of 'head' must be between 0 and 1000"),
])  # fmt: skip
def test_bad_knobs_are_errors_at_their_line(written: str, bad: str, expected: str) -> None:
    assert expected in error(HETERO.replace(written, bad))


def test_a_knob_on_a_worker_system_is_an_error() -> None:
    text = HETERO.replace("  ec3_max_instances = 6 and\n", "  ec3_idle_time = 5 and\n")
    assert ("ec3.radl:15:3: ec3_idle_time is a knob of the whole cluster: write it on the "
            "front-end system 'head', not on 'wn'") in error(text)  # fmt: skip


@pytest.mark.parametrize("queues", ["''", "'bad name!'", "'a;b'"])
def test_bad_queues_list(queues: str) -> None:
    text = HETERO.replace("'largejobs,smalljobs'", queues)
    assert "ec3.radl:25:3: ec3_node_queues_list of 'largewn' must name 1 to 32 Slurm " \
           "partitions" in error(text)


def test_two_front_ends_by_type() -> None:
    text = HETERO.replace("system largewn (\n  ec3_node_type = 'wn'",
                          "system largewn (\n  ec3_node_type = 'front'")
    assert "a second front-end: 'largewn' and 'head' both have ec3_node_type" in error(text)


def test_tosca_knob_ranges() -> None:
    doc = yaml.safe_load(TOSCA.read_text())
    doc["topology_template"]["node_templates"]["elastic_cluster"]["metadata"]["poll"] = 0
    with pytest.raises(TemplateError) as caught:
        load_template("elastic.yaml", text=yaml.safe_dump(doc))
    assert "elastic knob poll of 'elastic_cluster' must be between 1 and 3600" in \
        str(caught.value)


# -- the policy: which node type a partition's demand powers on --------------------------------
def hetero() -> ElasticCluster:
    return ElasticCluster("ec3", "slurm", "head", [
        WorkerPool("wn", 0, 2, 4, 2000, queues=("smalljobs",)),
        WorkerPool("largewn", 0, 2, 8, 4000, queues=("largejobs", "smalljobs")),
    ], Knobs(max_booting=9))  # fmt: skip


def job(n: int, partition: str, cpus: int = 1) -> SlurmJob:
    return SlurmJob(str(n), "PENDING", cpus, 1, 0, partition, "Resources")


def powered(decisions: list) -> list[str | None]:
    return [d.pool for d in decisions if d.action == "power_on"]


def test_a_partition_powers_on_the_node_types_that_serve_it() -> None:
    # largejobs: only largewn serves it, though wn comes first in the burst order
    assert powered(decide(hetero(), [], [job(1, "largejobs")], [], History())) == ["largewn"]
    # smalljobs: wn first; once at its max, the next node type serving it
    out = decide(hetero(), [], [job(i, "smalljobs", 4) for i in range(3)], [], History())
    assert powered(out) == ["wn", "wn", "largewn"]
    assert out[2].reason.endswith("powering on a worker on largewn (wn at max 2)")
    # no partition said: the default one (the first), smalljobs
    assert powered(decide(hetero(), [], [job(1, "")], [], History())) == ["wn"]


def test_an_idle_worker_of_another_partition_is_no_supply() -> None:
    idle_small = Worker(1, "wn", "wn1", "configured", 100.0, "idle", 4)
    out = decide(hetero(), [idle_small], [job(1, "largejobs")], [], History())
    assert powered(out) == ["largewn"]
    # but it is for its own partition
    assert powered(decide(hetero(), [idle_small], [job(1, "smalljobs")], [], History())) == []


def test_unsatisfiable_within_a_partition() -> None:
    out = decide(hetero(), [], [job(7, "smalljobs", 16), job(8, "other")], [], History())
    assert [(d.action, d.reason) for d in out] == [(
        "unsatisfiable", "job 7 asks for 16 CPUs per node; no worker has more than 8 CPUs: "
        "it cannot run on this cluster")]  # the job of a partition not ours: not our demand
    out = decide(hetero(), [], [job(9, "largejobs", 9)], [], History())
    assert out[0].reason == ("job 9 asks for 9 CPUs per node; no worker of partition largejobs "
                             "has more than 8 CPUs: it cannot run on this cluster")


def test_tosca_partition_is_a_name() -> None:
    doc = yaml.safe_load(TOSCA.read_text())
    meta = doc["topology_template"]["node_templates"]["elastic_cluster"]["metadata"]
    meta["partition"] = "debug\nSlurmctldHost=elsewhere"  # would be a slurm.conf line
    with pytest.raises(TemplateError) as caught:
        load_template("elastic.yaml", text=yaml.safe_dump(doc))
    assert "partition of 'elastic_cluster' must be a Slurm partition name" in str(caught.value)
    meta["partition"] = "batch"
    cluster = load_template("elastic.yaml", text=yaml.safe_dump(doc)).elastic
    assert cluster is not None and cluster.partitions() == ["batch"]
