"""Recognising an elastic cluster in TOSCA, and its bad forms (errors with file:line:col)."""

from pathlib import Path

import pytest

from orbis.lang.errors import TemplateError
from orbis.lang.tosca import load
from orbis.model.elastic import Knobs

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "elastic-slurm.yaml"


def test_the_example_is_an_elastic_slurm_cluster_with_two_sites():
    t = load(EXAMPLE, {"idle_time": 20, "wn_max_site_a": 3})
    e = t.elastic
    assert e is not None and (e.lrms, e.front, e.partition) == ("slurm", "front", "debug")
    assert [(p.compute, p.min, p.max, p.cpus) for p in e.pools] == [
        ("wn_a", 0, 3, 1),
        ("wn_b", 0, 2, 1),
    ]
    assert e.knobs == Knobs(idle_time=20.0, max_booting=2)
    # no CLUES recipe or role is left; Orbis's Slurm recipes are in their place
    assert t.components["elastic_cluster"].operations == []
    front_op = t.components["lrms_front"].operations[0]
    assert "slurm_role: elastic_front" in (front_op.inline or "")
    assert ("tosca.relationships.DependsOn", "lrms_front") in t.components["lrms_wn_a"].requirements
    assert not any(
        "slurm" in r or "clues" in r for c in t.computes.values() for r in c.galaxy_roles
    )
    assert (t.computes["wn_a"].count, t.computes["wn_b"].count) == (0, 0)


def test_a_plain_template_is_not_elastic():
    text = (
        EXAMPLE.read_text().split("  node_templates:")[0]
        + """  node_templates:
    vm:
      type: tosca.nodes.indigo.Compute
"""
    )
    assert load("plain.yaml", text=text).elastic is None


def _broken(old: str, new: str) -> str:
    text = EXAMPLE.read_text()
    assert old in text
    return text.replace(old, new)


def _error(text: str) -> str:
    with pytest.raises(TemplateError) as caught:
        load("elastic.yaml", text=text)
    return str(caught.value)


def test_max_below_min_names_the_line():
    text = _broken(
        "            min_instances: 0\n            max_instances: { get_input: wn_max_site_b }",
        "            min_instances: 3\n            max_instances: { get_input: wn_max_site_b }",
    )
    message = _error(text)
    line = text.splitlines().index("            min_instances: 3") + 2
    assert (
        f"elastic.yaml:{line}:28: 'wn_b': scalable max_instances 2 is less than "
        "min_instances 3" in message
    )


def test_elastic_cluster_without_lrms():
    message = _error(_broken("        - lrms: lrms_front\n", ""))
    assert (
        "elastic.yaml:46:5: ElasticCluster 'elastic_cluster' has no 'lrms' requirement" in message
    )


def test_workers_without_max_instances_get_the_capability_default():
    text = _broken("            max_instances: { get_input: wn_max_site_a }\n", "")
    cluster = load("elastic.yaml", text=text).elastic
    assert cluster is not None and cluster.pools[0].max == 1  # tosca.capabilities.Scalable's


def test_bad_knob():
    message = _error(_broken("max_booting: 2", "max_booting: lots"))
    assert "elastic knob max_booting of 'elastic_cluster' must be a number" in message
