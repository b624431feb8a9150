"""Every base + add-on pair of the IM Dashboard catalogue copy (tests/fixtures/im_catalogue/)
composes as the Dashboard merges it and validates where IM accepts the merge; where IM cannot
(tosca-parser refuses a requirement or get_attribute naming a node the merge lacks) Orbis
refuses too, naming file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orbis.lang.compose import load_composed
from orbis.lang.errors import TemplateError

CATALOGUE = Path(__file__).resolve().parents[2] / "fixtures" / "im_catalogue"


def _metadata(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError:  # an add-on that is not YAML (stac_vm.yaml) names nothing
        return {}
    return (doc.get("metadata") or {}) if isinstance(doc, dict) else {}


def _pairs() -> list[tuple[str, str]]:
    """Every (base, add-on) the catalogue relates: the add-ons a base offers in `childs` and the
    add-ons naming it in `parents` (bench/catalogue_check.py counts the same pairs)."""
    files = sorted(CATALOGUE.glob("*.y*ml"))
    meta = {path.name: _metadata(path) for path in files}
    pairs = []
    for base, data in meta.items():
        if data.get("parents"):
            continue  # an add-on
        childs = list(data.get("childs") or [])
        named_by = [a for a, m in meta.items() if base in (m.get("parents") or [])]
        childs += [a for a in named_by if a not in childs]
        pairs += [(base, child) for child in childs]
    return pairs


PAIRS = _pairs()
# The copy holds each file's latest stored version: some add-ons of that version name the VM
# base's node though another base offers them (the merge has no such node), one is not YAML.
IM_REFUSES = {
    ("slurm_cluster.yml", "ssh_keys.yml"): "ssh_keys.yml:37:17: requirement 'host' of node "
    "'create_users' names unknown node 'simple_node'",
    ("slurm_cluster.yml", "dydns_egi_update_lrms.yml"): "dydns_egi_update_lrms.yml:52:34: "
    "unknown node 'simple_node'",
    ("htcondor_cluster.yml", "dydns_egi_update_lrms.yml"): "dydns_egi_update_lrms.yml:52:34: "
    "unknown node 'simple_node'",
    # not YAML ("fastapi_image: get_input: ..."): no parser reads it
    ("simple-node-disk.yml", "stac_vm.yaml"): "stac_vm.yaml:69:39: invalid YAML",
}
# What the Dashboard's form supplies (a required input without default: HTML `required`); IM
# refuses the merge as written (a null operation input), as Orbis does (test below)
FORM = {("simple-node-disk.yml", "postgresql.yaml"): {"postgresql_password": "s3cret"}}
# IM's translation of the merges whose counts the add-on changes or keeps notably
SYSTEMS = {
    ("oscar.yaml", "oscar_elastic.yaml"): {"front": 1, "wn": 0},  # wn replaced: min_wn_num
    ("kubernetes.yaml", "kubernetes_elastic.yaml"): {"front": 1, "wn": 1},
    ("slurm_cluster.yml", "slurm_elastic.yaml"): {"lrms_server": 1, "lrms_wn": 1},
    ("simple-node-disk.yml", "proxy_host.yaml"): {"simple_node": 1},
    ("oscar.yaml", "oscar_function.yaml"): {"front": 1, "wn": 1},  # a hosted function
    ("kubernetes.yaml", "k8s_galaxy.yaml"): {"front": 1, "wn": 3},  # wn_num replaced: 3
    ("kubernetes.yaml", "k8s_new_wn_type.yaml"): {"front": 1, "wn": 1, "wng": 0},
    # a stand-alone Kubernetes template the VM base offers: both sets of machines
    ("simple-node-disk.yml", "galaxy.yaml"): {"simple_node": 1, "front": 1, "wn": 3},
    ("oscar.yaml", "nifi.yaml"): {"front": 1, "wn": 1},
    # redefines the base's num_instances input (default 1) and puts the node on a proxied net
    ("simple-node-disk.yml", "proxy_host_vm.yaml"): {"simple_node": 1},
    ("slurm_cluster.yml", "apptainer_cluster.yaml"): {"lrms_server": 1, "lrms_wn": 1},
    # a Slurm cluster beside the Kubernetes/OSCAR one (two parents): both sets of machines
    ("kubernetes.yaml", "k8s_slurm_interlink.yaml"): {
        "front": 1, "wn": 1, "slurm_server": 1, "slurm_wn": 1},
    ("oscar.yaml", "k8s_slurm_interlink.yaml"): {
        "front": 1, "wn": 1, "slurm_server": 1, "slurm_wn": 1},
}


def test_the_copy_holds_every_pair_the_catalogue_offers() -> None:
    # 67 offered in the bases' childs, 14 named only in an add-on's parents (README.md there)
    assert len(PAIRS) == 81
    assert all((CATALOGUE / child).is_file() for _, child in PAIRS)
    assert set(SYSTEMS) | set(IM_REFUSES) <= set(PAIRS)


@pytest.mark.parametrize(("base", "child"), PAIRS, ids=[f"{b}+{c}" for b, c in PAIRS])
def test_every_catalogue_pair(base: str, child: str) -> None:
    if (base, child) in IM_REFUSES:
        with pytest.raises(TemplateError) as refused:
            load_composed(CATALOGUE / base, [CATALOGUE / child])
        assert IM_REFUSES[(base, child)] in str(refused.value)
        return
    template, _, _ = load_composed(CATALOGUE / base, [CATALOGUE / child], FORM.get((base, child)))
    if (base, child) in SYSTEMS:
        assert template.systems() == SYSTEMS[(base, child)]
    alone, _, _ = load_composed(CATALOGUE / base)
    assert set(alone.systems()) <= set(template.systems())  # the base's machines are kept


def test_a_required_input_left_empty_is_refused_where_an_operation_needs_it() -> None:
    with pytest.raises(TemplateError, match="postgresql.yaml:78:36: operation input "
                       "'postgresql_password' of node 'postgresql' is null"):  # fmt: skip
        load_composed(CATALOGUE / "simple-node-disk.yml", [CATALOGUE / "postgresql.yaml"])


@pytest.mark.parametrize(
    ("card", "systems"),
    [
        ("galaxy_vm.yaml", {"simple_node": 1, "front": 1, "wn": 3}),
        ("k8s_argo.yaml", {"front": 1, "wn": 1}),
        ("k8s_minio.yaml", {"front": 1, "wn": 1}),
        ("k8s_influxdb.yaml", {"front": 1, "wn": 1}),
        ("k8s_galaxy_link.yaml", {"front": 1, "wn": 3}),  # k8s_galaxy's wn_num default wins
    ],
)
def test_a_link_card_deploys_its_parent_with_its_childs(card: str, systems: dict) -> None:
    template, _, smap = load_composed(CATALOGUE / card)
    assert template.systems() == systems
    link = yaml.safe_load((CATALOGUE / card).read_text())["metadata"]["link"]
    assert [Path(f).name for f in smap.files] == [link["parent"], *link["childs"]]


def test_an_empty_proxy_host_is_no_proxy_and_a_given_one_is_used() -> None:
    # the proxy add-ons' defaults: proxy_host "" and user "" (IM: no proxy)
    template, _, _ = load_composed(
        CATALOGUE / "kubernetes.yaml", [CATALOGUE / "proxy_host_k8s.yaml"]
    )
    assert template.networks["priv_network"].proxy_host is None
    template, _, _ = load_composed(
        CATALOGUE / "kubernetes.yaml",
        [CATALOGUE / "proxy_host_k8s.yaml"],
        {"proxy_host": "bastion.example.org", "user": "jump", "private_key": "KEY"},
    )
    network = template.networks["priv_network"]
    assert network.proxy_host == "jump@bastion.example.org" and network.proxy_key == "KEY"


def test_a_non_slurm_elastic_cluster_deploys_without_elasticity_with_a_warning() -> None:
    template, _, _ = load_composed(
        CATALOGUE / "kubernetes.yaml", [CATALOGUE / "kubernetes_elastic.yaml"]
    )
    assert template.elastic is None
    assert any(
        "ElasticCluster 'elastic_cluster_front_end': workers are powered on and off for Slurm "
        "front-ends only" in w
        for w in template.warnings
    )
    # its CLUES recipes are not run (they would call back an IM)
    assert template.components["elastic_cluster_front_end"].operations == []


def test_a_size_given_without_unit_through_an_input_is_megabytes_as_in_im() -> None:
    # slurm_galaxy redefines wn_mem as an integer "in MiB"; IM reads a bare size as MB
    template, _, _ = load_composed(
        CATALOGUE / "slurm_cluster.yml", [CATALOGUE / "slurm_galaxy.yml"]
    )
    assert template.computes["lrms_wn"].mem_size == 4096 * 10**6
    assert any("4096 has no unit: read as 4096 MB, as IM does" in w for w in template.warnings)


def test_a_size_written_without_unit_is_still_refused(tmp_path: Path) -> None:
    # tosca-parser checks a value written in place (not through a function): IM refuses it
    path = tmp_path / "t.yaml"
    path.write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_0\n"
        "topology_template:\n  node_templates:\n    vm:\n      type: tosca.nodes.Compute\n"
        "      capabilities:\n        host:\n          properties: {mem_size: 4096}\n"
    )
    with pytest.raises(TemplateError, match="4096 is not a scalar-unit.size"):
        load_composed(path)
