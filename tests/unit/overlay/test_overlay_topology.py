"""Reading the overlay from templates: roles, the primary, and the file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from orbis.lang.errors import TemplateError
from orbis.lang.radl.loader import load_radl
from orbis.lang.tosca.loader import load
from orbis.overlay.rights import NONE, ROUTES, TUNNEL, node_rights

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "overlay-two-sites.yaml"
HEAD = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - indigo_custom_types: https://raw.githubusercontent.com/indigo-dc/tosca-types/master/custom_types.yaml
topology_template:
  node_templates:
    a:
      type: tosca.nodes.indigo.Compute
      capabilities: {endpoint: {properties: {network_name: PUBLIC}}}
    b:
      type: tosca.nodes.indigo.Compute
      capabilities: {endpoint: {properties: {network_name: PUBLIC}}}
    w:
      type: tosca.nodes.indigo.Compute
"""


def _load(extra: str, policies: str = "") -> object:
    return load("t.yaml", text=HEAD + extra + policies)


def _errors(extra: str, policies: str = "") -> list[str]:
    with pytest.raises(TemplateError) as caught:
        _load(extra, policies)
    return [str(p) for p in caught.value.problems]


def test_the_example_reads_as_a_star_with_a_backup_and_site_b_router() -> None:
    template = load(EXAMPLE)
    overlay = template.overlay
    assert overlay is not None
    assert [(c.compute, c.subnet, c.site) for c in overlay.central_points] == [
        ("front", "192.168.255.0/24", "siteA"), ("cp-backup", "192.168.254.0/24", "siteB")]
    assert [(m.compute, m.router) for m in overlay.members] == [("cp-backup", True)]
    # upstream's recipes (fetched from GitHub) and Galaxy role are Orbis's own setup now
    assert all(not c.operations and not c.artifacts for c in template.components.values())
    assert not any(r.startswith("indigo-dc.indigovr") for c in template.computes.values()
                   for r in c.galaxy_roles)
    assert {n: node_rights(template, n) for n in template.computes} == {
        "front": TUNNEL, "cp-backup": TUNNEL, "worker-a": ROUTES, "worker-b": ROUTES}


def test_the_catalogue_offers_the_same_example() -> None:
    assert (EXAMPLE.parents[0] / "catalogue" / "overlay_two_sites.yaml").read_text() == (
        EXAMPLE.read_text())


def test_no_overlay_no_rights() -> None:
    template = _load("")
    assert template.overlay is None  # type: ignore[attr-defined]
    assert node_rights(template, "a") == NONE  # type: ignore[arg-type]


def test_a_vrouter_or_client_without_central_point_is_reported_at_its_line() -> None:
    errors = _errors("""    r:
      type: tosca.nodes.indigo.VR.VRouter
      requirements: [{host: b}]
    c:
      type: tosca.nodes.indigo.VR.Client
      requirements: [{host: w}]
""")
    hint = ("(hint: add the requirement 'central_point: "
            "<a tosca.nodes.indigo.VR.CentralPoint node>')")
    # (the type's own recipe input, get_attribute [SELF, central_point, ...], is reported too)
    assert f"t.yaml:14:5: VRouter 'r' has no central point {hint}" in errors
    assert f"t.yaml:17:5: Client 'c' has no central point {hint}" in errors


PLACE = """  policies:
    - one: {type: tosca.policies.Placement, targets: [a, b], properties: {cloud_id: s1}}
"""


def test_two_central_points_on_one_site() -> None:
    errors = _errors("""    cp1:
      type: tosca.nodes.indigo.VR.CentralPoint
      requirements: [{host: a}]
    cp2:
      type: tosca.nodes.indigo.VR.CentralPoint
      requirements: [{host: b}]
""", PLACE)
    assert errors == ["t.yaml:17:5: two central points on site 's1' (hint: put the backup on a "
                      "public node of another site)"]


def test_overlapping_subnets_are_reported_at_the_later_one() -> None:
    errors = _errors("""    cp1:
      type: tosca.nodes.indigo.VR.CentralPoint
      properties: {indigovr_subnet: 10.0.0.0/16}
      requirements: [{host: a}]
    cp2:
      type: tosca.nodes.indigo.VR.CentralPoint
      properties: {indigovr_subnet: 10.0.5.0/24}
      requirements: [{host: b}]
""")
    assert errors == ["t.yaml:18:5: overlay subnet of 'cp2' (10.0.5.0/24) overlaps overlay "
                      "subnet of 'cp1' (10.0.0.0/16) (hint: give each site and the overlay "
                      "subnets of their own)"]


def test_a_central_point_needs_a_valid_subnet() -> None:
    errors = _errors("""    cp:
      type: tosca.nodes.indigo.VR.CentralPoint
      properties: {indigovr_subnet: 10.0.0.1/24}
      requirements: [{host: a}]
""")
    assert len(errors) == 1
    assert errors[0].startswith("t.yaml:14:5: overlay subnet '10.0.0.1/24': ")


def test_a_central_point_and_a_vrouter_without_public_address_are_warned_not_refused() -> None:
    """IM deploys them (its test tosca_add_hybrid_l2.yml): the VPN forms within a site only."""
    template = _load("""    v:
      type: tosca.nodes.indigo.Compute
    cp:
      type: tosca.nodes.indigo.VR.CentralPoint
      requirements: [{host: w}]
    r:
      type: tosca.nodes.indigo.VR.VRouter
      requirements: [{host: v}, {central_point: cp}]
""")
    overlay = template.overlay  # type: ignore[attr-defined]
    assert [c.compute for c in overlay.central_points] == ["w"]
    assert [(m.compute, m.router) for m in overlay.members] == [("v", True)]
    warnings = template.warnings  # type: ignore[attr-defined]
    assert any(w.startswith("t.yaml:16:5: central point 'cp' is on 'w', which has no public "
                            "address: members of other sites cannot reach it") for w in warnings)
    assert any(w.startswith("t.yaml:19:5: VRouter 'r' is on a node without a public address")
               for w in warnings)
    assert sorted(template.computes) == ["a", "b", "v", "w"]  # type: ignore[attr-defined]


def test_clients_name_one_primary_and_the_other_is_the_backup() -> None:
    template = _load("""    cp2:
      type: tosca.nodes.indigo.VR.CentralPoint
      requirements: [{host: b}]
    cp1:
      type: tosca.nodes.indigo.VR.CentralPoint
      requirements: [{host: a}]
    c:
      type: tosca.nodes.indigo.VR.Client
      requirements: [{host: w}, {central_point: cp1}]
""")
    overlay = template.overlay  # type: ignore[attr-defined]
    assert overlay.primary.component == "cp1" and overlay.backup.component == "cp2"
    assert overlay.backup.subnet == "192.168.254.0/24"  # the default next to the primary's


RADL = """network pub (outbound = 'yes')
network priv (router = '{route}')
system gw (net_interface.0.connection = 'pub' and net_interface.1.connection = 'priv')
system node (net_interface.0.connection = 'priv')
deploy gw 1
deploy node 1
"""


def test_radl_router_sets_a_static_route_and_is_checked() -> None:
    template = load_radl(RADL.format(route="10.0.0.0/16,gw"), "t.radl")
    assert template.overlay is not None
    assert [(r.network, r.cidr, r.system) for r in template.overlay.routes] == [
        ("priv", "10.0.0.0/16", "gw")]
    assert node_rights(template, "gw") == TUNNEL and node_rights(template, "node") == ROUTES
    with pytest.raises(TemplateError) as caught:
        load_radl(RADL.format(route="10.0.0.0/33,gw"), "t.radl")
    assert [str(p) for p in caught.value.problems][0].startswith(
        "t.radl:2:9: network 'priv': router '10.0.0.0/33,gw': ")


def test_a_router_naming_no_system_is_warned_and_sets_no_route() -> None:
    """IM translates it and never finds the system (its test tosca_nets.yml): accepted."""
    template = load_radl(RADL.format(route="10.0.0.0/16,gateway"), "t.radl")
    assert template.overlay is None and sorted(template.computes) == ["gw", "node"]
    assert template.warnings == [
        "t.radl:2:9: network 'priv': router names unknown system 'gateway': no route is set "
        "(router = 'CIDR,system')"]
    tosca = _load("""    site_b_net:
      type: tosca.nodes.network.Network
      properties: {network_type: private, gateway_ip: '192.168.0.0/16,vr1_compute'}
""")
    assert tosca.overlay is None  # type: ignore[attr-defined]
    assert any(w.startswith("t.yaml:14:5: network 'site_b_net': router names unknown system "
                            "'vr1_compute'") for w in tosca.warnings)  # type: ignore[attr-defined]


def test_tosca_gateway_ip_with_a_system_is_imss_router() -> None:
    template = _load("""    site_b_net:
      type: tosca.nodes.network.Network
      properties: {network_type: private, gateway_ip: '192.168.0.0/16,b'}
""")
    overlay = template.overlay  # type: ignore[attr-defined]
    assert [(r.network, r.cidr, r.system) for r in overlay.routes] == [
        ("site_b_net", "192.168.0.0/16", "b")]


def test_the_local_back_end_gives_the_rights_at_creation_and_only_then() -> None:
    from orbis.providers.base import NodeSpec
    from orbis.providers.local import LocalProvider

    local = LocalProvider(base_url="unix:///nonexistent.sock")
    options = {r: local._node_options(NodeSpec("i", 0, "n", net_rights=r))
               for r in (NONE, ROUTES, TUNNEL)}  # fmt: skip
    assert options[NONE] == {}  # an infrastructure without overlay: unprivileged nodes
    assert options[ROUTES] == {"cap_add": ["NET_ADMIN"]}
    assert options[TUNNEL]["devices"] == ["/dev/net/tun:/dev/net/tun:rwm"]
    assert options[TUNNEL]["sysctls"]["net.ipv4.ip_forward"] == "1"


VR_RADL = """network pub (outbound = 'yes')
network priv ()
system front (net_interface.0.connection = 'pub' and disk.0.image.url = 'local://siteA' and
  vrouter = 'central_point' and vrouter.subnet = '192.168.255.0/24')
system cpb (net_interface.0.connection = 'pub' and disk.0.image.url = 'local://siteB' and
  vrouter = 'central_point,router')
system solo (net_interface.0.connection = 'pub' and disk.0.image.url = 'local://siteC' and
  vrouter = 'client' and vrouter.central_point = '{target}')
system wn (net_interface.0.connection = 'priv' and disk.0.image.url = 'local://siteB')
deploy front 1
deploy cpb 1
deploy solo 1
deploy wn 1
"""


def test_radl_vrouter_features_read_as_the_tosca_components() -> None:
    template = load_radl(VR_RADL.format(target="front"), "t.radl")
    overlay = template.overlay
    assert overlay is not None
    assert [(c.compute, c.subnet, c.site) for c in overlay.central_points] == [
        ("front", "192.168.255.0/24", "siteA"), ("cpb", "192.168.254.0/24", "siteB")]
    assert sorted((m.compute, m.router, m.central_point) for m in overlay.members) == [
        ("cpb", True, "front_central_point"), ("solo", False, "front_central_point")]
    assert [node_rights(template, n) for n in ("front", "solo", "wn")] == [TUNNEL, TUNNEL, ROUTES]


def test_radl_vrouter_mistakes_are_reported_at_their_line() -> None:
    with pytest.raises(TemplateError) as caught:
        load_radl(VR_RADL.format(target="fornt"), "t.radl")
    assert [str(p) for p in caught.value.problems] == [
        "t.radl:8:26: vrouter.central_point of system 'solo' names 'fornt', which is no system "
        "with vrouter = 'central_point' (hint: did you mean 'front'?)"]
    bad = VR_RADL.format(target="front").replace("'central_point,router'", "'rooter'")
    with pytest.raises(TemplateError) as caught:
        load_radl(bad, "t.radl")
    assert [str(p) for p in caught.value.problems][0].startswith(
        "t.radl:6:3: system 'cpb': vrouter role 'rooter' is not known (hint: did you mean "
        "'router'?)")
