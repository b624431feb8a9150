"""The position-aware YAML loader."""

import pytest

from orbis.lang.errors import TemplateError
from orbis.lang.yaml_positions import PList, PMap, load_yaml, plain

TEXT = """top:
  key: value
  items:
    - 1
    - {deep: [x, y]}
base: &b {a: 1}
merged:
  <<: *b
  c: 2
"""


def test_positions_of_keys_values_and_items() -> None:
    doc = load_yaml(TEXT, "f.yaml")
    assert isinstance(doc, PMap)
    top = doc["top"]
    assert (top.key_pos("key").line, top.key_pos("key").col) == (2, 3)
    assert (top.value_pos("key").line, top.value_pos("key").col) == (2, 8)
    items = top["items"]
    assert isinstance(items, PList)
    assert (items.item_pos(1).line, items.item_pos(1).col) == (5, 7)
    deep = items[1]["deep"]
    assert (deep.item_pos(1).line, deep.item_pos(1).col) == (5, 18)
    assert plain(doc["merged"]) == {"a": 1, "c": 2}
    assert type(plain(doc)) is dict


def test_yaml_error_position() -> None:
    with pytest.raises(TemplateError) as info:
        load_yaml("a: [1, 2\nb: 3\n", "f.yaml")
    [problem] = info.value.problems
    assert problem.position is not None and problem.position.file == "f.yaml"
    assert problem.message.startswith("invalid YAML:")
    assert problem.position.line == 2
