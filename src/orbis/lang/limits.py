"""Bounds on what one user document may cost: its size, its nesting depth, and the number of
values it stands for once YAML aliases are expanded (a "billion laughs" document is a few
hundred bytes that expands to 10^9 values; PyYAML shares the aliased nodes, so composing it
is cheap, but anything that walks the result would not be).

Every check runs on the composed node graph or the decoded JSON, in time linear in the text,
before anything walks the values. Refusals are `LimitError`s (a TemplateError, so the API
answers 400) whose message names the setting (orbis.config.Limits).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from orbis.config import limits
from orbis.lang.errors import Problem, TemplateError
from orbis.model.infrastructure import Position

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LimitError(TemplateError):
    """A document past one of the configured limits; the message names the setting."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__([Problem(Position(file, 1, 1), f"limit: {message}")])


def check_size(text: str, file: str) -> None:
    """Refuse a document longer than ORBIS_MAX_TEMPLATE_BYTES (counted in characters, which
    is at most the UTF-8 size: cheap, and never refuses a text within the limit)."""
    limit = limits().max_template_bytes
    if len(text) > limit:
        raise LimitError(file, f"the document is larger than {limit} bytes "
                               "(ORBIS_MAX_TEMPLATE_BYTES)")  # fmt: skip


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_graph(root: Node, file: str) -> None:
    """Refuse a composed YAML graph that is recursive, nests deeper than ORBIS_MAX_YAML_DEPTH
    or expands to more than ORBIS_MAX_YAML_NODES values. Each node is visited once (sizes of
    shared nodes are remembered), without recursion."""
    bounds = limits()
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    started: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finishing = stack.pop()
        key = id(node)
        if finishing:
            kids = _children(node)
            total = 1 + sum(size[id(k)] for k in kids)
            deepest = 1 + max((depth[id(k)] for k in kids), default=0) if kids else 0
            if total > bounds.max_yaml_nodes:
                raise LimitError(file, f"the document expands to more than "
                                       f"{bounds.max_yaml_nodes} values, aliases expanded "
                                       "(ORBIS_MAX_YAML_NODES)")  # fmt: skip
            if deepest > bounds.max_yaml_depth:
                raise LimitError(file, f"the document nests deeper than "
                                       f"{bounds.max_yaml_depth} levels (ORBIS_MAX_YAML_DEPTH)")
            size[key], depth[key] = total, deepest
            continue
        if key in size:
            continue
        if key in started:  # started, not finished, and reached again: an alias to an ancestor
            raise LimitError(file, "a YAML alias refers to a value that contains it "
                                   "(a recursive document)")  # fmt: skip
        started.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)


def check_plain(value: Any, file: str) -> None:
    """The same bounds (values, depth) for decoded JSON: plain lists and dicts, no aliases."""
    bounds = limits()
    count = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        count += 1
        if count > bounds.max_yaml_nodes:
            raise LimitError(file, f"the document holds more than {bounds.max_yaml_nodes} "
                                   "values (ORBIS_MAX_YAML_NODES)")  # fmt: skip
        if isinstance(item, dict | list):
            if level + 1 > bounds.max_yaml_depth:
                raise LimitError(file, f"the document nests deeper than "
                                       f"{bounds.max_yaml_depth} levels (ORBIS_MAX_YAML_DEPTH)")
            parts = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((part, level + 1) for part in parts)


def compose_bounded(text: str, file: str) -> Node | None:
    """The YAML node graph of one document, refused past the limits (yaml.YAMLError for a
    syntax error, LimitError for a limit)."""
    check_size(text, file)
    node: Node | None = yaml.compose(text, Loader=_Loader)
    if node is not None:
        check_graph(node, file)
    return node


def safe_load_bounded(text: str, file: str = "-") -> Any:
    """`yaml.safe_load` within the limits: for playbooks, template updates and other YAML a
    user sends that needs no positions. Raises yaml.YAMLError or LimitError."""
    check_size(text, file)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_graph(node, file)
        return loader.construct_document(node)
    finally:
        loader.dispose()
