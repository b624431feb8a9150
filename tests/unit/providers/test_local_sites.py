"""Local sites (issue 13): choosing them, their provider, their networks. The isolation itself
is checked on real containers in tests/e2e/test_local_sites.py."""

from __future__ import annotations

import pytest

from orbis.engine.machines import local_image
from orbis.model.infrastructure import Compute
from orbis.placement.ranking import rank
from orbis.placement.sites import Site, SiteRegistry, UnsupportedSite
from orbis.providers.local import LocalProvider, network_name
from orbis.providers.local_sites import LocalSiteProvider, site_network_name
from orbis.providers.sim import SimProvider

A = {"id": "siteA", "type": "LocalSite"}
B = {"id": "siteB", "type": "LocalSite"}


def node(**kw: object) -> Compute:
    return Compute("n", "tosca.nodes.Compute", **kw)  # type: ignore[arg-type]


def test_local_site_lines_are_sites_of_the_local_back_end_with_their_own_provider():
    default = LocalProvider(base_url="unix:///nowhere.sock")
    registry = SiteRegistry(default)
    a, b = registry.sites_for([A, B])
    assert (a.local, a.own_network, a.default_backend) == (True, True, False)
    pa, pb = registry.provider(a), registry.provider(b)
    assert isinstance(pa, LocalSiteProvider) and pa.site == "siteA" and pb.site == "siteB"
    assert registry.provider(a) is pa  # built once
    assert not pa.private_reachable  # reached through a public node, like a cloud
    assert registry.provider_by_id("siteB", [A, B]) is pb
    # a plain Local line is still the server's own back-end
    (plain,) = registry.sites_for([{"id": "here", "type": "Local"}])
    assert plain.default_backend and registry.provider(plain) is default


def test_local_sites_need_the_local_back_end(tmp_path):
    registry = SiteRegistry(SimProvider(tmp_path / "sim.db"))
    (a,) = registry.sites_for([A])
    with pytest.raises(UnsupportedSite, match="local back-end"):
        registry.provider(a)


def test_a_site_network_per_infrastructure_and_site():
    assert site_network_name("i1", "siteA") == "orbis-i1-site-sitea"
    assert site_network_name("i1", "siteA") != site_network_name("i1", "siteB")
    assert network_name("i1") == "orbis-i1"  # the shared public network


def test_local_image_urls_pick_their_site():
    a, b = (Site(x["id"], x["type"], x, n) for n, x in enumerate((A, B)))
    plain = Site("local", "Local", {}, 2)
    ranking = rank(node(image="local://siteB"), [a, b, plain], {})
    assert [c.site.id for c in ranking.candidates] == ["siteB"]
    assert "local site siteB" in ranking.excluded["siteA"]
    assert "local site siteB" in ranking.excluded["local"]
    assert [c.site.id for c in rank(node(cloud_id="siteA"), [a, b], {}).candidates] == ["siteA"]
    # the node image, or a local image by name, without the "another cloud" warning
    assert local_image("local://siteA") == (None, None)
    assert local_image("local://siteA/orbis-node:x") == ("orbis-node:x", None)
