"""Elastic clusters in RADL (EC3's ec3_max_instances / ec3_if_fail), and their bad forms."""

from pathlib import Path

import pytest

from orbis.engine.plan import levels
from orbis.lang import load_template
from orbis.lang.errors import TemplateError

HYBRID = Path(__file__).resolve().parents[2] / "fixtures" / "elastic" / "ec3_hybrid.radl"


def test_pools_follow_ec3_if_fail_and_get_orbis_slurm():
    t = load_template(HYBRID)
    e = t.elastic
    assert e is not None and e.front == "front"
    assert [(p.compute, p.min, p.max) for p in e.pools] == [("wn", 0, 2), ("wn_b", 0, 2)]
    assert (t.computes["wn"].count, t.computes["wn_b"].count) == (0, 0)
    # no recipe of its own: Orbis's Slurm recipe, the workers' after the front-end's
    assert "elastic_front" in (t.components["front_slurm"].operations[0].inline or "")
    assert levels(t)["wn_slurm"] > levels(t)["front_slurm"]


def test_the_chain_order_not_the_written_order():
    text = HYBRID.read_text().replace("ec3_if_fail = 'wn_b' and\n", "")
    text = text.replace("system wn_b (\n", "system wn_b (\n  ec3_if_fail = 'wn' and\n")
    e = load_template("x.radl", text=text).elastic
    assert e is not None and [p.compute for p in e.pools] == ["wn_b", "wn"]


def _error(text: str) -> str:
    with pytest.raises(TemplateError) as caught:
        load_template("ec3.radl", text=text)
    return str(caught.value)


def test_ec3_if_fail_naming_an_unknown_system():
    message = _error(HYBRID.read_text().replace("'wn_b' and", "'wn_c' and"))
    assert "ec3.radl:16:3: ec3_if_fail of system 'wn' names 'wn_c', which is no system with " \
           "ec3_max_instances (hint: did you mean 'wn_b'?)" in message


def test_no_front_end():
    text = HYBRID.read_text().replace("system front (", "system head (").replace(
        "deploy front 1", "")
    assert "needs a front-end" in _error(text)


def test_a_plain_radl_is_not_elastic():
    text = HYBRID.read_text().replace("  ec3_max_instances = 2 and\n", "")
    text = text.replace("  ec3_if_fail = 'wn_b' and\n", "")
    assert load_template("plain.radl", text=text).elastic is None
