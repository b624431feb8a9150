"""EC3's ec3_inherit_from (a node type like another, with overrides): read, not refused."""

from pathlib import Path

import pytest

from orbis.lang import load_template
from orbis.lang.errors import TemplateError
from orbis.lang.radl.parser import parse_document
from orbis.lang.radl.writer import render

# EC3's heterogeneous cluster (its docs' "largewn inherits wn"), with a burst from wn to largewn
HETERO = Path(__file__).resolve().parents[2] / "fixtures" / "elastic" / "ec3_inherit.radl"


def test_a_node_type_inherits_and_overrides():
    t = load_template(HETERO)
    e = t.elastic
    assert e is not None
    small, large = e.pools
    assert (small.compute, small.cpus, small.names, small.queues) == (
        "wn", 4, ("wn1", "wn2", "wn3"), ("smalljobs",))
    # its own features win; the rest (OS, network, node type, max) is the parent's
    assert (large.compute, large.cpus, large.names, large.queues, large.max) == (
        "largewn", 8, ("wn4", "wn5", "wn6"), ("largejobs",), 3)
    assert t.computes["largewn"].interfaces[0].network == "net"
    assert t.computes["largewn"].count == 0  # deploy lines are not inherited
    # ec3_if_fail = '' over the parent's 'largewn': the chain is wn -> largewn, no cycle
    assert [p.compute for p in e.pools] == ["wn", "largewn"]


def test_the_configure_is_the_parents_then_its_own():
    recipes = """
configure wn (
@begin
---
  - hosts: all
    tasks:
      - user: name=user1  # the parent's
@end
)
configure largewn (
@begin
- hosts: all
  tasks:
    - apt: name=pkg
@end
)
"""
    t = load_template("h.radl", text=HETERO.read_text() + recipes)
    text = t.components["largewn@largewn"].operations[0].inline or ""
    assert text.index("user: name=user1") < text.index("apt: name=pkg")
    assert "# the parent's" in text  # joined as text (comments kept), not re-dumped
    assert "user: name=user1" in (t.components["wn@wn"].operations[0].inline or "")
    # a node type without its own configure gets the parent's
    only_parent = HETERO.read_text() + recipes.split("configure largewn")[0]
    t = load_template("h.radl", text=only_parent)
    assert "user: name=user1" in (t.components["largewn@largewn"].operations[0].inline or "")


def test_networks_inherit_too():
    text = HETERO.read_text().replace("network net ()", "network net (outbound = 'yes')\n"
                                      "network net2 (ec3_inherit_from = network net)")
    t = load_template("n.radl", text=text)
    assert t.networks["net2"].public is True


def test_the_written_form_round_trips():
    doc = parse_document(HETERO.read_text(), "h.radl")
    assert "ec3_inherit_from = system wn" in render(doc)


def _error(text: str) -> str:
    with pytest.raises(TemplateError) as caught:
        load_template("ec3.radl", text=text)
    return str(caught.value)


@pytest.mark.parametrize("value, message", [
    ("system wnn", "ec3.radl:19:3: ec3_inherit_from of system 'largewn' names unknown system "
                   "'wnn' (hint: did you mean 'wn'?)"),
    ("network net", "ec3.radl:19:3: system 'largewn' cannot inherit from network 'net'"),
    ("'wn'", "ec3.radl:19:3: ec3_inherit_from of system 'largewn' must name a system, as "
             "'ec3_inherit_from = system wn'"),
    ("system largewn", "ec3.radl:19:3: ec3_inherit_from makes a cycle: largewn -> largewn"),
])
def test_bad_inheritance_is_an_error_at_its_place(value, message):
    assert message in _error(HETERO.read_text().replace("system wn and", f"{value} and"))


def test_a_cycle_through_two_systems():
    text = HETERO.read_text().replace("  ec3_max_instances = 6 and\n",
                                      "  ec3_inherit_from = system largewn and\n")
    message = _error(text)
    assert "ec3.radl:19:3: ec3_inherit_from makes a cycle: wn -> largewn -> wn" in message
    assert message.count("cycle") == 1


def test_only_ec3_inherit_from_takes_a_system():
    text = HETERO.read_text().replace("ec3_if_fail = 'largewn'", "ec3_if_fail = system largewn")
    message = _error(text)
    assert "ec3.radl:12:17: expected a value for 'ec3_if_fail'" in message
    assert "only ec3_inherit_from takes a 'system NAME' value" in message


def test_a_worker_type_may_inherit_from_the_front_end_but_not_its_knobs():
    text = HETERO.read_text().replace("  cpu.count >= 1 and\n", "  cpu.count >= 1 and\n"
                                      "  ec3_idle_time = 60 and\n", 1)
    text = text.replace("  ec3_inherit_from = system wn and\n",
                        "  ec3_inherit_from = system front and\n  ec3_max_instances = 2 and\n")
    e = load_template("f.radl", text=text).elastic
    assert e is not None and e.front == "front" and e.knobs.idle_time == 60
    assert [p.compute for p in e.pools] == ["wn", "largewn"]
