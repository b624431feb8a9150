"""YAML loading that remembers where every key and value was written.

PyYAML's composer gives a node graph with marks; we build plain Python values from it, but
mappings and sequences are `PMap` / `PList` (dict / list subclasses) that keep the position of
each key, value and item, so problems deep inside a template still point at line:col.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orbis.lang.errors import Problem, TemplateError
from orbis.lang.limits import compose_bounded
from orbis.model.infrastructure import Position

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


# Positions are kept as PyYAML's marks and turned into `Position`s only when asked for: most
# are never needed (they serve error messages), and making 50,000 of them costs more than
# the rest of loading a large template.
Where = Position | Mark


def _position(file: str, where: Where) -> Position:
    if isinstance(where, Position):
        return where
    return Position(file, where.line + 1, where.column + 1)


class PMap(dict[Any, Any]):
    """A mapping with the position of itself, of each key and of each value. The root mapping
    of a document also lists its repeated keys in `duplicates` (see `load_yaml`)."""

    duplicates: tuple[Problem, ...] = ()  # set on a document's root only

    def __init__(self, pos: Where, file: str = "") -> None:
        super().__init__()
        self._where = pos
        self.file = file
        self.key_positions: dict[Any, Where] = {}
        self.value_positions: dict[Any, Where] = {}
        self.float_texts: dict[Any, str] = {}  # "22.10" as written, before it became 22.1

    @property
    def pos(self) -> Position:
        return _position(self.file, self._where)

    def key_pos(self, key: Any) -> Position:
        where = self.key_positions.get(key)
        return self.pos if where is None else _position(self.file, where)

    def value_pos(self, key: Any) -> Position:
        where = self.value_positions.get(key)
        return self.pos if where is None else _position(self.file, where)


class PList(list[Any]):
    """A sequence with the position of itself and of each item."""

    def __init__(self, pos: Where, file: str = "") -> None:
        super().__init__()
        self._where = pos
        self.file = file
        self.item_positions: list[Where] = []

    @property
    def pos(self) -> Position:
        return _position(self.file, self._where)

    def item_pos(self, index: int) -> Position:
        if 0 <= index < len(self.item_positions):
            return _position(self.file, self.item_positions[index])
        return self.pos


def child_pos(container: Any, key: Any, default: Position | None = None) -> Position | None:
    """Position of `container[key]` (value position for maps, item position for lists)."""
    if isinstance(container, PMap):
        return container.value_pos(key)
    if isinstance(container, PList) and isinstance(key, int):
        return container.item_pos(key)
    return default


def plain(value: Any) -> Any:
    """Drop position bookkeeping: PMap/PList → dict/list, recursively."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.scalars = SafeConstructor()
        self.done: dict[int, Any] = {}  # anchors/aliases share nodes: build each once
        self.duplicates: list[Problem] = []

    def pos(self, node: Node) -> Position:
        return Position(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node) -> Any:
        if id(node) in self.done:
            return self.done[id(node)]
        if isinstance(node, ScalarNode):
            if node.tag == _STR_TAG:  # most scalars: no constructor needed
                return node.value
            value = self.scalars.construct_object(node)
            self.scalars.constructed_objects.clear()
            return value
        if isinstance(node, SequenceNode):
            seq = PList(node.start_mark, self.file)
            self.done[id(node)] = seq
            for item in node.value:
                seq.append(self.build(item))
                seq.item_positions.append(item.start_mark)
            return seq
        if isinstance(node, MappingNode):
            mapping = PMap(node.start_mark, self.file)
            self.done[id(node)] = mapping
            merged: list[PMap] = []
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:  # '<<: *anchor' merges, explicit keys win
                    value = self.build(value_node)
                    merged.extend(value if isinstance(value, list) else [value])
                    continue
                key = self.build(key_node)
                if isinstance(key, list | dict):
                    raise TemplateError(
                        [Problem(self.pos(key_node), "a mapping key must be a scalar")]
                    )
                if key in mapping:  # PyYAML's (and so IM's) rule: the later value wins
                    first = _position(self.file, mapping.key_positions[key])
                    message = (f"duplicate key '{key}': the value given here replaces the one at "
                               f"line {first.line} (as IM's YAML parser does)")  # fmt: skip
                    self.duplicates.append(Problem(self.pos(key_node), message))
                    mapping.float_texts.pop(key, None)  # (the key keeps its first place)
                mapping[key] = self.build(value_node)
                if isinstance(mapping[key], float) and isinstance(value_node, ScalarNode):
                    mapping.float_texts[key] = value_node.value
                mapping.key_positions[key] = key_node.start_mark
                mapping.value_positions[key] = value_node.start_mark
            for source in merged:
                for key, value in source.items() if isinstance(source, dict) else []:
                    if key not in mapping:
                        mapping[key] = value
                        mapping.key_positions[key] = source.key_pos(key)
                        mapping.value_positions[key] = source.value_pos(key)
            return mapping
        raise TemplateError([Problem(self.pos(node), f"unsupported YAML node {node.tag}")])


def load_yaml(text: str, file: str) -> Any:
    """Parse one YAML document keeping positions; YAML errors become a TemplateError, and
    a document past the limits (size, depth, values with aliases expanded) a LimitError.
    A key repeated in a mapping keeps its last value, as PyYAML (IM's parser) does; the
    repeats are listed in the root mapping's `duplicates` for the loaders to warn about
    (`duplicate_warnings`)."""
    try:
        node = compose_bounded(text, file)
        if node is None:
            return None
        builder = _Builder(file)
        value = builder.build(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(file, mark.line + 1, mark.column + 1) if mark else Position(file, 1, 1)
        what = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem and exc.context_mark and exc.context_mark is not mark:
            what += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise TemplateError([Problem(pos, f"invalid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise TemplateError([Problem(Position(file, 1, 1), f"invalid YAML: {exc}")]) from None
    if builder.duplicates and isinstance(value, PMap):
        value.duplicates = tuple(builder.duplicates)
    return value


def duplicate_warnings(doc: Any) -> list[Problem]:
    """The repeated keys `load_yaml` found in a document (empty for anything else)."""
    return list(doc.duplicates) if isinstance(doc, PMap) else []
