"""Composition of a base template with add-ons (IM Dashboard catalogue format)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orbis.lang import load_template
from orbis.lang.compose import MERGED_NAME, addons_of, compose, link_of, load_composed
from orbis.lang.errors import Problem, TemplateError
from orbis.model.infrastructure import Position

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "compose"
REPO = Path(__file__).resolve().parents[3]
CATALOGUE = REPO / "examples" / "catalogue"
BASE = FIXTURES / "base.yaml"


def problems(base: Path, *addons: Path) -> list[str]:
    with pytest.raises(TemplateError) as info:
        load_composed(base, list(addons))
    return [str(p) for p in info.value.problems]


def test_sections_merge_in_order_and_paths_follow_their_file():
    text, smap = compose(BASE, [FIXTURES / "addon_ok.yaml", FIXTURES / "addons/in_folder.yaml"])
    doc = yaml.safe_load(text)
    topology = doc["topology_template"]
    assert list(topology["inputs"]) == ["cpus", "web_port", "use_tls", "cert"]
    assert list(topology["node_templates"]) == ["node", "web", "job"]
    assert list(topology["outputs"]) == ["ip", "url"]
    # identical policies (same name, same body) are kept once
    assert [next(iter(p)) for p in topology["policies"]] == ["place_node"]
    # imports: union, each URL once
    assert len(doc["imports"]) == 2
    # the sub-folder add-on's playbook path now starts from the base's folder
    job = topology["node_templates"]["job"]
    assert job["interfaces"]["Standard"]["create"] == "addons/play/web.yml"
    configure = job["interfaces"]["Standard"]["configure"]["implementation"]
    assert configure["file"] == "addons/play/web.yml"  # an artifact definition in place
    # and so does a relationship operation's
    relationship = job["requirements"][1]["dependency"]["relationship"]
    assert relationship["interfaces"]["Configure"]["pre_configure_source"] == "addons/play/web.yml"
    # the later add-on's input (same type) wins, with a warning naming both places
    assert topology["inputs"]["cpus"]["default"] == 2
    assert any("input 'cpus' redefined by in_folder.yaml" in w for w in smap.warnings)
    assert any(f"{BASE}:13:5" in w for w in smap.warnings)
    assert smap.origins["node_templates"] == {
        "node": str(BASE),
        "web": str(FIXTURES / "addon_ok.yaml"),
        "job": str(FIXTURES / "addons/in_folder.yaml"),
    }
    assert doc["description"].startswith("A base with one node.\n\nAn add-on with a web app.")


def test_metadata_tabs_and_enabled_by_are_kept():
    text, _ = compose(BASE, [FIXTURES / "addon_ok.yaml"])
    meta = yaml.safe_load(text)["metadata"]
    # same-titled tab: both lists' entries, once each; new tab appended with its options
    assert meta["tabs"]["Machine"] == ["cpus", "web_port"]
    assert meta["tabs"]["Web"] == [
        "use_tls",
        {"cert": {"enabled_by": "use_tls", "tag_type": "textarea"}},
    ]
    assert meta["template_name"] == "Base + Web"
    assert meta["childs"] == ["addon_ok.yaml"]  # what was chosen, as the Dashboard records it


def test_composed_template_loads_and_finds_the_playbooks():
    template, _, _ = load_composed(BASE, [FIXTURES / "addon_ok.yaml"], {"web_port": "9090"})
    assert set(template.components) == {"web"}
    assert template.inputs["web_port"] == 9090
    op = template.components["web"].operations[0]
    assert op.implementation == str(FIXTURES / "addons/play/web.yml")
    assert not [w for w in template.warnings if "not found" in w]


def test_an_addon_node_or_output_replaces_the_base_one_whole_in_its_place():
    # the IM Dashboard's merge (catalogue-format §2.2): the elastic variants rely on it
    conflict = FIXTURES / "addon_conflict.yaml"
    template, text, smap = load_composed(BASE, [conflict])
    topology = yaml.safe_load(text)["topology_template"]
    assert list(topology["node_templates"]) == ["node"]  # the base's place kept
    assert topology["node_templates"]["node"] == {"type": "tosca.nodes.Compute"}  # no merge
    assert topology["outputs"]["ip"] == {"value": "elsewhere"}
    assert smap.origins["node_templates"]["node"] == str(conflict)
    assert any(
        w.startswith(f"{conflict}:7:5: node 'node' redefined by addon_conflict.yaml")
        and f"{BASE}:18:5" in w
        for w in template.warnings
    ), template.warnings
    assert any(f"{conflict}:10:5: output 'ip' redefined" in w for w in template.warnings)


def test_input_redefined_with_another_type_replaces_it_and_uses_are_checked():
    found = problems(BASE, FIXTURES / "addon_input_type.yaml")
    # the add-on's string input replaced the number; the base node using it is now wrong
    assert any(p.startswith(f"{BASE}:23:23:") and "'one'" in p for p in found), found


def test_addon_for_another_base_or_not_an_addon():
    found = problems(BASE, FIXTURES / "addon_wrong_parent.yaml")
    assert found == [
        f"{FIXTURES / 'addon_wrong_parent.yaml'}:4:12: addon_wrong_parent.yaml is an add-on of "
        "other_base.yaml, not of base.yaml (hint: compose it with one of its parents, or add "
        "base.yaml to its parents)"
    ]
    found = problems(BASE, FIXTURES / "addon_no_parents.yaml")
    assert found[0].startswith(f"{FIXTURES / 'addon_no_parents.yaml'}:2:1: addon_no_parents.yaml")
    assert "no metadata.parents" in found[0]


def test_an_addon_is_not_a_base_and_is_not_given_twice():
    found = problems(FIXTURES / "addon_ok.yaml")
    assert "is an add-on" in found[0] and "not a base template" in found[0]
    found = problems(BASE, FIXTURES / "addon_ok.yaml", FIXTURES / "addon_ok.yaml")
    assert "is given twice" in found[0]


def test_validation_errors_point_at_the_addon_file():
    found = problems(BASE, FIXTURES / "addon_bad_ref.yaml")
    assert any(p.startswith(f"{FIXTURES / 'addon_bad_ref.yaml'}:10:") for p in found), found
    assert any("nodee" in p for p in found), found


def test_source_map_locates_merged_text_in_the_original_files():
    text, smap = compose(BASE, [FIXTURES / "addon_ok.yaml"])
    lines = text.splitlines()
    web_line = lines.index("    web:") + 1
    assert smap.locate(web_line, 5) == Position(str(FIXTURES / "addon_ok.yaml"), 34, 5)
    node_line = lines.index("    node:") + 1
    assert smap.locate(node_line, 5) == Position(str(BASE), 18, 5)
    # a problem found in the merged text (e.g. by the server) maps back to its file
    port_line = next(i for i, line in enumerate(lines, 1) if "get_input: web_port" in line)
    error = TemplateError([Problem(Position(MERGED_NAME, port_line, 21), "boom", "fix it")])
    moved = smap.remap(error).problems[0]
    assert moved.position is not None and moved.position.file == str(FIXTURES / "addon_ok.yaml")
    assert moved.position.line == 43 and moved.hint == "fix it"
    # the merged text itself is a valid template
    assert set(load_template("merged.yaml", text=text).components) == {"web"}


def test_tab_entries_that_are_not_inputs_are_warnings(tmp_path):
    addon = tmp_path / "addon.yaml"
    (tmp_path / "base.yaml").write_text(BASE.read_text().replace("  childs:", "  x_childs:"))
    addon.write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_0\n"
        "metadata:\n  parents: [base.yaml]\n  tabs:\n    T:\n"
        "      - nope\n      - cpus: {enabled_by: missing}\n"
        "topology_template: {}\n"
    )
    _, smap = compose(tmp_path / "base.yaml", [addon])
    assert any("tab 'T' lists 'nope', which is not an input" in w for w in smap.warnings)
    assert any("enabled_by 'missing', which is not an input" in w for w in smap.warnings)


def test_policies_written_as_a_map_merge_by_name(tmp_path):
    head = "tosca_definitions_version: tosca_simple_yaml_1_0\n"
    (tmp_path / "b.yaml").write_text(
        head + "topology_template:\n  policies:\n    p1: {type: tosca.policies.Placement}\n"
    )
    (tmp_path / "a.yaml").write_text(
        head + "metadata: {parents: [b.yaml]}\ntopology_template:\n  policies:\n"
        "    p2: {type: tosca.policies.Placement}\n"
    )
    text, smap = compose(tmp_path / "b.yaml", [tmp_path / "a.yaml"])
    assert list(yaml.safe_load(text)["topology_template"]["policies"]) == ["p1", "p2"]
    assert smap.origins["policies"] == {"p2": str(tmp_path / "a.yaml")}


def test_link_card_expands_to_its_parent_and_childs():
    assert link_of(FIXTURES / "link.yaml") == (BASE, [FIXTURES / "addon_ok.yaml"])
    assert link_of(BASE) is None
    template, _, smap = load_composed(FIXTURES / "link.yaml")
    assert smap.base == str(BASE) and set(template.components) == {"web"}


# ---- the curated catalogue --------------------------------------------------------------------


def catalogue_files() -> list[Path]:
    return sorted(CATALOGUE.glob("*.yaml"))


def combinations() -> list[tuple[str, tuple[str, ...]]]:
    """Every base alone, every base with each of its childs, and with all compatible childs."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for path in catalogue_files():
        parents, childs = addons_of(path)
        if parents or link_of(path):
            continue
        out.append((path.name, ()))
        out += [(path.name, (child,)) for child in childs]
    out.append(("cluster.yaml", ("slurm.yaml", "nfs.yaml", "dask.yaml")))
    out.append(("cluster.yaml", ("kubernetes.yaml", "oscar.yaml")))
    return out


def test_the_catalogue_has_what_research_users_expect():
    names = {p.name for p in catalogue_files()}
    for expected in ("vm.yaml", "cluster.yaml", "slurm.yaml", "nfs.yaml", "dask.yaml",
                     "jupyterlab.yaml", "hello_web.yaml", "kubernetes.yaml", "galaxy.yaml",
                     "oscar.yaml"):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize("path", catalogue_files(), ids=lambda p: p.name)
def test_every_catalogue_template_has_dashboard_metadata(path: Path):
    doc = yaml.safe_load(path.read_text())
    meta = doc["metadata"]
    for key in ("template_name", "display_name", "icon", "template_version"):
        assert meta.get(key), f"{path.name}: metadata.{key}"
    assert doc.get("description"), path.name
    if meta.get("link"):
        return
    assert meta.get("tabs"), f"{path.name}: metadata.tabs"
    for name, spec in (doc["topology_template"].get("inputs") or {}).items():
        assert spec.get("description"), f"{path.name}: input {name} has no description"
        assert "default" in spec, f"{path.name}: input {name} has no default"
    parents, childs = addons_of(path)
    for parent in parents:  # parents and childs agree both ways
        assert path.name in addons_of(CATALOGUE / parent)[1], f"{parent} does not offer {path}"
    for child in childs:
        assert path.name in addons_of(CATALOGUE / child)[0], f"{child} is not for {path}"


@pytest.mark.parametrize(
    ("base", "addons"), combinations(), ids=lambda v: "+".join(v) if isinstance(v, tuple) else v
)
def test_every_catalogue_combination_validates(base: str, addons: tuple[str, ...]):
    template, text, _ = load_composed(CATALOGUE / base, [CATALOGUE / a for a in addons])
    assert template.computes
    assert not [w for w in template.warnings if "not found" in w], template.warnings
    load_template(CATALOGUE / base, text=text)  # the text sent to the server loads too


@pytest.mark.parametrize("path", [p for p in catalogue_files() if link_of(p)], ids=lambda p: p.name)
def test_link_cards_validate(path: Path):
    template, _, _ = load_composed(path)
    assert template.components


GRYCAP_TYPES = "https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml"
INDIGO_TYPES = "https://raw.githubusercontent.com/indigo-dc/tosca-types/master/custom_types.yaml"


def test_an_addon_importing_another_type_set_keeps_the_bases_type_definitions(tmp_path: Path):
    # grycap's LRMS.FrontEnd.Kubernetes has `cert_manager`; INDIGO's same-named type does not.
    # The Dashboard keeps only the base's imports, so the base's definition must win.
    base = tmp_path / "k8s.yaml"
    base.write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_0\n"
        f"imports:\n  - grycap: {GRYCAP_TYPES}\n"
        "metadata: {childs: [net.yaml]}\n"
        "topology_template:\n"
        "  node_templates:\n"
        "    fe:\n"
        "      type: tosca.nodes.indigo.LRMS.FrontEnd.Kubernetes\n"
        "      properties: {cert_manager: true}\n"
        "      requirements: [{host: front}]\n"
        "    front:\n"
        "      type: tosca.nodes.indigo.Compute\n"
    )
    addon = tmp_path / "net.yaml"
    addon.write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_0\n"
        f"imports:\n  - indigo: {INDIGO_TYPES}\n"
        "metadata: {parents: [k8s.yaml]}\n"
        "topology_template:\n"
        "  node_templates:\n"
        "    priv:\n"
        "      type: tosca.nodes.indigo.network.Network\n"
        "      properties: {network_type: private}\n"
    )
    template, text, smap = load_composed(base, [addon])
    assert set(template.computes) == {"front"}
    assert "priv" in template.networks
    assert any("net.yaml imports types its base does not" in w for w in smap.warnings)
    # both sets are still imported, the base's last (later sets override earlier ones)
    imports = [next(iter(e.values())) for e in yaml.safe_load(text)["imports"]]
    assert imports == [INDIGO_TYPES, GRYCAP_TYPES]
    load_template(base, text=text)  # the text sent to the server loads too


def test_an_addon_the_base_offers_in_childs_composes_whatever_its_parents_say(tmp_path: Path):
    # the Dashboard's picker lists a base's childs; the add-on's own parents are informational
    addon_text = (
        "tosca_definitions_version: tosca_simple_yaml_1_0\n"
        "metadata: {parents: [first.yaml]}\n"
        "topology_template:\n"
        "  node_templates:\n"
        "    app:\n"
        "      type: tosca.nodes.SoftwareComponent\n"
        "      requirements: [{host: vm}]\n"
    )
    (tmp_path / "app.yaml").write_text(addon_text)
    base_text = (
        "tosca_definitions_version: tosca_simple_yaml_1_0\n"
        "metadata: {{childs: [{childs}]}}\n"
        "topology_template:\n"
        "  node_templates:\n"
        "    vm: {{type: tosca.nodes.Compute}}\n"
    )
    (tmp_path / "second.yaml").write_text(base_text.format(childs="app.yaml"))
    template, _, _ = load_composed(tmp_path / "second.yaml", [tmp_path / "app.yaml"])
    assert set(template.components) == {"app"} and set(template.computes) == {"vm"}
    # a base that does not offer it still refuses it, naming the add-on's parents
    (tmp_path / "third.yaml").write_text(base_text.format(childs=""))
    found = problems(tmp_path / "third.yaml", tmp_path / "app.yaml")
    assert "app.yaml is an add-on of first.yaml, not of third.yaml" in found[0]


def test_an_addon_import_of_an_unshipped_type_set_is_dropped_as_the_dashboard_drops_it(
    tmp_path: Path,
):
    # the catalogue's ARC add-on imports a fork's types; the Dashboard sends IM only the base's
    # imports, which define the add-on's types: the merge must not try to fetch the fork's
    fork = "https://raw.githubusercontent.com/someone/tosca-fork/arc/custom_types.yaml"
    base = tmp_path / "vm.yaml"
    base.write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_0\n"
        f"imports:\n  - grycap: {GRYCAP_TYPES}\n"
        "topology_template:\n"
        "  node_templates:\n"
        "    front:\n"
        "      type: tosca.nodes.indigo.Compute\n"
    )
    addon = tmp_path / "arc.yaml"
    addon.write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_0\n"
        f"imports:\n  - mine: {fork}\n  - indigo: {INDIGO_TYPES}\n"
        "metadata: {parents: [vm.yaml]}\n"
        "topology_template:\n"
        "  node_templates:\n"
        "    arc:\n"
        "      type: tosca.nodes.indigo.ARCwn\n"
        "      requirements: [{host: front}]\n"
    )
    template, text, smap = load_composed(base, [addon])
    assert "arc" in template.components
    assert any(
        f"arc.yaml:3:5: arc.yaml: import '{fork}' dropped: the IM Dashboard keeps only the "
        "base's imports" in w
        for w in smap.warnings
    )
    imports = [next(iter(e.values())) for e in yaml.safe_load(text)["imports"]]
    assert imports == [INDIGO_TYPES, GRYCAP_TYPES]  # a shipped set is still merged
