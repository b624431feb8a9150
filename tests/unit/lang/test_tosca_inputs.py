"""Inputs: -i overrides (strings) coerced to the declared type, constraints checked."""

from typing import Any

import pytest

from orbis.lang.errors import TemplateError
from orbis.lang.tosca import load
from orbis.lang.tosca.datatypes import check_constraint, coerce, size_to_bytes

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  inputs:
    n: {type: integer, default: 1, constraints: [{greater_or_equal: 0}, {less_than: 10}]}
    ratio: {type: float, default: 0.5}
    flag: {type: boolean, default: false}
    name: {type: string, default: abc, constraints: [{pattern: "[a-z]+"}, {max_length: 5}]}
    size: {type: scalar-unit.size, default: 1 GB, constraints: [{in_range: [512 MB, 8 GiB]}]}
    tags: {type: list, default: [], entry_schema: {type: string}}
    env: {type: map, default: {}}
    mode: {type: string, default: a, constraints: [{valid_values: [a, b]}]}
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilities:
        host:
          properties:
            mem_size: {get_input: size}
"""


def _load(**overrides: Any):  # noqa: ANN202
    return load("in.yaml", inputs=overrides, text=TEMPLATE)


def test_defaults() -> None:
    t = _load()
    assert t.inputs == {
        "n": 1, "ratio": 0.5, "flag": False, "name": "abc", "size": "1 GB", "tags": [],
        "env": {}, "mode": "a",
    }  # fmt: skip


def test_overrides_are_coerced() -> None:
    t = _load(n="7", ratio="2", flag="yes", name="xyz", size="2 GiB", tags='["a", "b"]',
              env="{k: v}", mode="b")  # fmt: skip
    assert t.inputs == {
        "n": 7, "ratio": 2.0, "flag": True, "name": "xyz", "size": "2 GiB", "tags": ["a", "b"],
        "env": {"k": "v"}, "mode": "b",
    }  # fmt: skip
    assert t.computes["vm"].mem_size == 2 * 1024**3


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"n": "x"}, "input 'n' (given on the command line): 'x' is not an integer"),
        ({"n": "10"}, "10 does not satisfy less_than"),
        ({"n": "-1"}, "-1 does not satisfy greater_or_equal"),
        ({"ratio": "abc"}, "'abc' is not a float"),
        ({"flag": "maybe"}, "'maybe' is not a boolean"),
        ({"name": "ABC"}, "'ABC' does not satisfy pattern"),
        ({"name": "abcdef"}, "does not satisfy max_length"),
        ({"size": "20 GB"}, "'20 GB' does not satisfy in_range"),
        ({"size": "lots"}, "'lots' is not a scalar-unit.size"),
        ({"tags": "{a: 1}"}, "is not a list"),
        ({"tags": "[[1]]"}, "input 'tags': entry [1] is not a string"),
        ({"env": "[1]"}, "is not a map"),
        ({"mode": "c"}, "'c' does not satisfy valid_values"),
    ],
)
def test_bad_override(overrides: dict[str, str], fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        _load(**overrides)
    [problem] = info.value.problems
    assert fragment in problem.message
    name = next(iter(overrides))
    assert problem.position is not None and problem.position.line == 4 + list(
        ["n", "ratio", "flag", "name", "size", "tags", "env", "mode"]
    ).index(name)  # the input's declaration


def test_unknown_override_suggests() -> None:
    with pytest.raises(TemplateError) as info:
        _load(nn="1")
    [problem] = info.value.problems
    assert problem.message == "unknown input 'nn' given on the command line"
    assert problem.hint == "did you mean 'n'?"
    assert problem.position is not None and problem.position.line == 4


def test_size_units() -> None:
    assert size_to_bytes("1 kB") == size_to_bytes("1 KB") == 1000
    assert size_to_bytes("1 KiB") == size_to_bytes("1 kib") == 1024
    assert size_to_bytes("1.5 GiB") == 3 * 1024**3 // 2
    assert size_to_bytes("2 TB") == 2 * 10**12
    assert size_to_bytes("10B") == 10
    assert size_to_bytes("3 parsecs") is None and size_to_bytes(3) is None


@pytest.mark.parametrize(
    ("value", "kind", "constraint", "ok"),
    [
        (3, "integer", {"equal": 3}, True),
        (4, "integer", {"greater_than": 4}, False),
        ("ab", "string", {"length": 2}, True),
        ([1], "list", {"min_length": 2}, False),
        ("2 GB", "scalar-unit.size", {"less_or_equal": "2000 MB"}, True),
    ],
)
def test_constraints(value: Any, kind: str, constraint: dict[str, Any], ok: bool) -> None:
    assert (check_constraint(value, kind, constraint) is None) is ok


def test_coerce_keeps_yaml_values() -> None:
    assert coerce(True, "integer", False)[1] == "True is not an integer"
    assert coerce(5, "string", False) == ("5", None)
    assert coerce("off", "boolean", True) == (False, None)


def test_nested_get_input() -> None:
    text = """tosca_definitions_version: tosca_simple_yaml_1_0
imports: [https://raw.githubusercontent.com/indigo-dc/tosca-types/master/custom_types.yaml]
topology_template:
  inputs:
    conf: {type: map, default: {images: [a, b]}}
  node_templates:
    vm:
      type: tosca.nodes.indigo.Compute
      capabilities:
        os: {properties: {image: {get_input: [conf, images, 1]}}}
"""
    assert load("t.yaml", text=text).computes["vm"].image == "b"
