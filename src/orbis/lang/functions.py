"""Output-mode evaluation of the functions a template leaves for later (model.Function).

The engine supplies `attributes(node, attribute, rest)`, which knows the real nodes (IPs, ids).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orbis.model.infrastructure import Function

AttributeLookup = Callable[[str, str, tuple[Any, ...]], Any]


def evaluate(value: Any, attributes: AttributeLookup) -> Any:
    """Evaluate Function trees inside a value (lists and maps element-wise).

    get_attribute → the callback; concat → str() of the items joined (None items give "");
    token [string, separator, index] → that piece or None; join [list, (separator)] → joined
    string. Functions with no output-mode meaning (get_artifact, get_operation_output) → None.
    """
    if isinstance(value, Function):
        return _call(value, attributes)
    if isinstance(value, dict):
        return {k: evaluate(v, attributes) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [evaluate(v, attributes) for v in value]
    return value


def _call(fn: Function, attributes: AttributeLookup) -> Any:
    args = [evaluate(a, attributes) for a in fn.args]
    if fn.name == "get_attribute":
        node, attribute, *rest = fn.args  # the loader checked there are at least two
        return evaluate(
            attributes(str(node), str(attribute), tuple(evaluate(rest, attributes))), attributes
        )
    if fn.name == "concat":
        return "".join("" if a is None else _text(a) for a in args)
    if fn.name == "token":
        text, separator, index = args
        if text is None or not isinstance(index, int):
            return None
        parts = str(text).split(str(separator))
        return parts[index] if 0 <= index < len(parts) else None
    if fn.name == "join":
        items = args[0] if isinstance(args[0], list) else [args[0]]
        separator = str(args[1]) if len(args) > 1 and args[1] is not None else ""
        return separator.join(_text(i) for i in items if i is not None)
    return None


def _text(value: Any) -> str:
    return str(value)


def attribute_references(value: Any) -> set[str]:
    """Names of the nodes a value reads attributes of (get_attribute, however deeply nested)."""
    found: set[str] = set()
    if isinstance(value, Function):
        if value.name == "get_attribute" and value.args:
            found.add(str(value.args[0]))
        for arg in value.args:
            found |= attribute_references(arg)
    elif isinstance(value, dict):
        for item in value.values():
            found |= attribute_references(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= attribute_references(item)
    return found
