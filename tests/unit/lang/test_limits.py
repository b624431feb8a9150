"""Bounded work while reading a user's document: size, depth, alias expansion, random(N) and
regular expressions (docs/limits.md). Each refusal is quick and names its setting."""

from __future__ import annotations

import time

import pytest
import yaml

from orbis.lang import load_template
from orbis.lang.errors import TemplateError
from orbis.lang.limits import LimitError, safe_load_bounded
from orbis.lang.merge import merge_tosca
from orbis.lang.regex import RegexError, compile_user_regex

HEAD = "tosca_definitions_version: tosca_simple_yaml_1_0\n"
NODE = "topology_template: {node_templates: {x: {type: tosca.nodes.Compute}}}\n"


def alias_bomb(levels: int = 9) -> str:
    """The "billion laughs": 9 levels of 9 aliases each stand for 9^9 values."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghijk"[: levels - 1]:
        text += f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]\n"
        previous = name
    return text


def refused(text: str, file: str = "t.yaml") -> tuple[str, float]:
    start = time.perf_counter()
    with pytest.raises(TemplateError) as caught:
        load_template(file, text=text)
    return str(caught.value), time.perf_counter() - start


def test_alias_bomb_refused_at_once_naming_the_limit() -> None:
    message, took = refused(HEAD + alias_bomb() + NODE)
    assert "ORBIS_MAX_YAML_NODES" in message
    assert took < 0.5


def test_alias_bomb_in_a_plain_yaml_load_is_refused() -> None:
    # the helper playbooks and template updates go through (configure/ansible.py, merge.py)
    with pytest.raises(LimitError, match="ORBIS_MAX_YAML_NODES"):
        safe_load_bounded(alias_bomb(), "playbook.yml")
    with pytest.raises(LimitError, match="ORBIS_MAX_YAML_NODES"):
        merge_tosca(HEAD + NODE, alias_bomb())


def test_shared_aliases_within_the_limit_still_load() -> None:
    assert safe_load_bounded(alias_bomb(levels=3)) is not None  # 9^3 values: fine


def test_recursive_alias_refused() -> None:
    message, _ = refused(HEAD + "x: &a [*a]\n" + NODE)
    assert "recursive" in message


def test_depth_limit_yaml_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    message, _ = refused(HEAD + "x: " + "[" * 100 + "]" * 100 + "\n" + NODE)
    assert "ORBIS_MAX_YAML_DEPTH" in message
    message, _ = refused("[" * 5000 + "]" * 5000, "t.json")  # RADL JSON
    assert "ORBIS_MAX_YAML_DEPTH" in message
    monkeypatch.setenv("ORBIS_MAX_YAML_DEPTH", "3")
    message, _ = refused('[{"class": "system", "id": "a", "x": [[1]]}]', "t.json")
    assert "3 levels" in message


def test_document_size_limit_for_every_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORBIS_MAX_TEMPLATE_BYTES", "1000")
    for text in (HEAD + NODE + "#" * 1000, "system a ()\n" + "#" * 1000, "[" + " " * 1000 + "]"):
        message, took = refused(text)
        assert "larger than 1000 bytes (ORBIS_MAX_TEMPLATE_BYTES)" in message
        assert took < 0.5
    load_template("t.yaml", text=HEAD + NODE)  # a small one still loads


def test_values_limit_counts_plain_documents_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORBIS_MAX_YAML_NODES", "50")
    message, _ = refused(HEAD + "x: [" + ", ".join(["1"] * 60) + "]\n" + NODE)
    assert "more than 50 values" in message


def test_random_length_is_bounded_in_tosca_and_radl() -> None:
    tosca = HEAD + "topology_template:\n  inputs:\n    pw: {type: string, default: 'random(%s)'}\n"
    message, took = refused(tosca % "1000000000")
    assert "ORBIS_MAX_RANDOM_LENGTH" in message and took < 0.5
    message, _ = refused(tosca % "5000")
    assert "ORBIS_MAX_RANDOM_LENGTH" in message
    message, _ = refused(tosca % ("9" * 5000))  # past int()'s own digit limit: still ours
    assert "ORBIS_MAX_RANDOM_LENGTH" in message
    radl = ("system a (disk.0.os.credentials.username = 'u' and "
            "disk.0.os.credentials.password = 'random(%s)')\n")
    for n in ("5000", "10000000000"):
        message, _ = refused(radl % n, "t.radl")
        assert "ORBIS_MAX_RANDOM_LENGTH" in message
    template = load_template("t.radl", text=radl % "16")
    credentials = template.computes["a"].credentials
    assert credentials is not None and len(credentials.password or "") == 16


def test_catastrophic_pattern_constraint_answers_promptly() -> None:
    text = (HEAD + "topology_template:\n  inputs:\n    pw:\n      type: string\n"
            "      constraints: [{pattern: '(a+)+$'}]\n")
    start = time.perf_counter()
    with pytest.raises(TemplateError) as caught:  # a value given, so refused (a default warns)
        load_template("t.yaml", text=text, inputs={"pw": "a" * 5000 + "b"})
    took = time.perf_counter() - start
    assert "does not satisfy pattern" in str(caught.value)
    assert took < 0.5  # Python's re backtracks for hours on this


def test_pattern_re2_cannot_compile_is_named() -> None:
    text = (HEAD + "topology_template:\n  inputs:\n    pw:\n      type: string\n"
            "      default: ab\n      constraints: [{pattern: 'a(?=b)'}]\n")
    message, _ = refused(text)
    assert "not supported by the linear-time engine (RE2)" in message


def test_user_regex_length_and_syntax() -> None:
    with pytest.raises(RegexError, match="ORBIS_MAX_REGEX_LENGTH"):
        compile_user_regex("a" * 5000)
    with pytest.raises(RegexError, match="RE2"):
        compile_user_regex(r"(a)\1")
    start = time.perf_counter()
    assert compile_user_regex("(a+)+$").search("a" * 100_000 + "b") is None
    assert time.perf_counter() - start < 0.5


def test_ordinary_yaml_is_unchanged() -> None:
    text = "base: &b {a: 1}\nmerged:\n  <<: *b\n  c: 2\n"
    assert safe_load_bounded(text) == yaml.safe_load(text)
