"""RADL text: lexical rules, sentences, semantics and the mapping into the model."""

from __future__ import annotations

import pytest

from orbis.lang import TemplateError, load_template
from orbis.lang.radl import lexer
from orbis.lang.radl.json_form import from_json, to_json
from orbis.lang.radl.loader import load_radl
from orbis.lang.radl.writer import to_radl
from orbis.model.compare import meaning


def radl(text: str):  # noqa: ANN201 - a Template
    return load_radl(text, "t.radl")


def error(text: str) -> str:
    with pytest.raises(TemplateError) as info:
        radl(text)
    return str(info.value)


def test_strings_escapes_and_lines() -> None:
    t = radl("system a (instance_name = 'it\\'s' and script = 'a\\nb\nc' and x = '#not')")
    c = t.computes["a"]
    assert c.instance_name == "it's"
    assert c.features["script"] == "a\\nb\nc"  # only \' is unescaped (as IM)
    assert c.features["x"] == "#not"


def test_double_quotes_are_an_extension_with_a_warning() -> None:
    t = radl('network n (outbound = "yes")')
    assert t.networks["n"].public
    assert "double-quoted" in t.warnings[0] and "t.radl:1:23" in t.warnings[0]


def test_random_any_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexer, "random_text", lambda n: "r" * n)
    t = radl(
        "system a (disk.0.os.credentials.username = 'u' and "
        "disk.0.os.credentials.password = 'random(12)')"
    )
    assert t.computes["a"].credentials.password == "r" * 12  # type: ignore[union-attr]


def test_units() -> None:
    c = radl("system a (memory.size >= 2GiB and disk.0.size >= 1.5t and disk.1.size = 10kb)")
    assert c.computes["a"].mem_size == 2 * 2**30
    assert c.computes["a"].disk_size == 1_500_000_000_000
    assert c.computes["a"].volumes[0].size == 10_000


def test_intervals_intersect_and_bounds_are_kept() -> None:
    c = radl("system a (cpu.count >= 2 and cpu.count <= 8 and cpu.count >= 4)").computes["a"]
    assert c.num_cpus == 4 and c.features == {"cpu.count_max": 8}


def test_conflicts_name_both_positions() -> None:
    message = error("system a (cpu.count >= 4 and\ncpu.count <= 2)")
    assert "t.radl:2:1" in message and "t.radl:1:11" in message


def test_contains_merges_by_name() -> None:
    c = radl(
        "system a (disk.0.applications contains (name = 'x') and "
        "disk.0.applications contains (name = 'x' and version = '2'))"
    ).computes["a"]
    assert c.features["disk.0.applications"] == [{"name": "x", "version": "2"}]


def test_galaxy_roles_and_collections() -> None:
    c = radl(
        "system a (disk.0.applications contains (name = 'ansible.roles.r1,1.0') and "
        "disk.0.applications contains (name = 'ansible.collections.c.d'))"
    ).computes["a"]
    assert c.galaxy_roles == ["r1,1.0"] and c.galaxy_collections == ["c.d"]


def test_deploy_counts_and_never_deployed() -> None:
    t = radl("system a ()\nsystem b ()\ndeploy a 2 one\ndeploy a 1")
    assert t.computes["a"].count == 3 and t.computes["a"].cloud_id == "one"
    assert t.computes["b"].count == 0


def test_contextualize_merge_default_step_and_tool() -> None:
    t = radl(
        "system s ()\nconfigure c (\n@begin\n- tasks: []\n@end\n)\nconfigure d ()\n"
        "contextualize 10 (system s configure c)\n"
        "contextualize 20 (option x = 1 system s configure d with cloud_init)"
    )
    assert t.ctxt_max_time == 20 and t.metadata["radl.contextualize_options"] == {"x": 1}
    assert t.components["c"].step == 0 and t.components["c"].operations[0].inline == "- tasks: []\n"
    assert t.components["d"].properties["ctxt_tool"] == "cloud_init"


def test_implicit_configure_and_name_clash() -> None:
    t = radl("system web ()\nconfigure web (\n@begin\n- tasks: []\n@end\n)\ndeploy web 1")
    assert list(t.components) == ["web@web"] and t.components["web@web"].host == "web"
    assert t.components["web@web"].step is None


def test_one_configure_on_two_systems() -> None:
    t = radl(
        "system a ()\nsystem b ()\nconfigure c ()\n"
        "contextualize (system a configure c step 1 system b configure c step 2)"
    )
    assert {k: v.step for k, v in t.components.items()} == {"c@a": 1, "c@b": 2}


def test_empty_contextualize_disables() -> None:
    t = radl("system a ()\nconfigure a ()\ncontextualize ()")
    assert t.contextualize is False and not t.components
    assert "contextualize ()" in to_radl(t)


def test_at_end_must_be_at_column_zero() -> None:
    t = radl("configure c (\n@begin\n- shell: |\n    @end\n@end\n)")
    assert t.metadata["radl.configures"]["c"] == "\n- shell: |\n    @end\n"


def test_free_features_kept_and_misspellings_reported() -> None:
    assert radl("system a (my_flag = 'x')").computes["a"].features == {"my_flag": "x"}
    assert "did you mean 'instance_type'" in error("system a (instance_typ = 'x')")


def test_description_and_ansible_in_metadata() -> None:
    t = radl(
        "ansible m (host = 'h' and credentials.username = 'u' and credentials.password = 'p')\n"
        "description d (name = 'n')"
    )
    assert t.name == "n" and t.metadata["radl.ansible"]["m"]["host"] == "h"


def test_public_interface_makes_a_public_machine() -> None:
    t = radl(
        "network p (outbound = 'yes' and outports = '80-8080')\n"
        "system a (net_interface.0.connection = 'p')"
    )
    c = t.computes["a"]
    assert c.public and c.network_name == "PUBLIC" and c.ports[0].target == 8080


def test_whitespace_only_is_empty() -> None:
    assert meaning(radl("  \n# nothing\n"))["computes"] == {}


def test_load_template_dispatch() -> None:
    assert load_template("a.radl", text="system a ()").computes
    assert load_template("a.json", text='[{"class": "system", "id": "a"}]').computes
    with pytest.raises(TemplateError, match="neither TOSCA"):
        load_template("a.yaml", text="foo: bar\n")


def test_json_errors_name_the_object() -> None:
    text = (
        '[\n {"class": "network", "id": "n"},\n {"class": "system", "id": "front",\n'
        '  "net_interface.0.connection": "pub"}\n]'
    )
    with pytest.raises(TemplateError) as info:
        from_json(text, "f.json")
    assert "f.json:3:2: object 1 ('system front'): unknown network 'pub'" in str(info.value)
    with pytest.raises(TemplateError, match="f.json:1:2: not valid JSON"):
        from_json("[,]", "f.json")


def test_json_features() -> None:
    t = from_json(
        '[{"class": "system", "id": "a", "cpu.count_min": 2, "memory.size_min": 1000,'
        ' "disk.0.applications": [{"name": "ansible.roles.r"}],'
        ' "softs": [{"weight": 5, "items": {"gpu.count_min": 1}}]},'
        ' {"class": "deploy", "system": "a", "vm_number": 2}]',
        "j.json",
    )
    c = t.computes["a"]
    assert (c.num_cpus, c.mem_size, c.galaxy_roles, c.count) == (2.0, 1000, ["r"], 2)
    assert to_json(t)[0]["softs"] == [{"weight": 5, "items": {"gpu.count_min": 1}}]


def test_tosca_model_as_radl(tmp_path) -> None:  # noqa: ANN001
    from pathlib import Path

    fixture = Path(__file__).resolve().parents[3] / "fixtures" / "tosca" / "web_app.yaml"
    text = to_radl(load_template(fixture))
    assert "network public_net (" in text and "outports = '80,10.0.0.0/8-443'" in text
    assert "cpu.count >= 2" in text and "import_playbook" in text
    again = radl(text)
    assert again.computes["front"].public and again.components["app"].step == 3
