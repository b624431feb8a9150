"""Output-mode evaluation of the functions left in a template."""

from typing import Any

from orbis.lang.functions import attribute_references, evaluate
from orbis.model.infrastructure import Function

IPS = {
    ("front", "public_address"): ["1.2.3.4"],
    ("wn", "private_address"): ["10.0.0.2", "10.0.0.3"],
}


def lookup(node: str, attribute: str, rest: tuple[Any, ...]) -> Any:
    value = IPS.get((node, attribute))
    if rest and isinstance(value, list):
        return value[rest[0]] if rest[0] < len(value) else None
    return value


def attr(*args: Any) -> Function:
    return Function("get_attribute", args)


def test_get_attribute_and_nesting() -> None:
    value = {"ips": [attr("front", "public_address", 0), attr("wn", "private_address")], "k": 1}
    assert evaluate(value, lookup) == {"ips": ["1.2.3.4", ["10.0.0.2", "10.0.0.3"]], "k": 1}


def test_concat_token_join() -> None:
    url = Function("concat", ("http://", attr("front", "public_address", 0), ":", 80))
    assert evaluate(url, lookup) == "http://1.2.3.4:80"
    second = Function("token", (attr("front", "public_address", 0), ".", 1))
    assert evaluate(second, lookup) == "2"
    assert evaluate(Function("token", ("a.b", ".", 5)), lookup) is None
    joined = Function("join", ([attr("wn", "private_address", 0), "x"], ","))
    assert evaluate(joined, lookup) == "10.0.0.2,x"
    assert evaluate(Function("join", (["a", "b"],)), lookup) == "ab"


def test_attribute_references() -> None:
    value = {
        "a": Function("concat", ("x", attr("front", "public_address"))),
        "b": [attr("wn", "private_address", 0)],
        "c": "front-like text",
    }
    assert attribute_references(value) == {"front", "wn"}
    assert attribute_references("plain") == set()
