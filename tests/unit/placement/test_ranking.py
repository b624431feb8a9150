"""Ranking candidate sites: named sites, image clouds, flavor fit, quota, preference."""

from __future__ import annotations

from orbis.model.infrastructure import Compute
from orbis.placement.ranking import rank
from orbis.placement.sites import Site, SiteInfo
from orbis.providers.base import Flavor, QuotaUse

GB = 1024**3
SMALL = [Flavor("1", "small", 2, 4096, 20)]
BIG = [Flavor("1", "small", 2, 4096, 20), Flavor("2", "big", 16, 65536, 100)]


def site(id_: str, kind: str = "OpenStack", order: int = 0, host: str = "") -> Site:
    return Site(id_, kind, {"host": host} if host else {}, order)


def node(**kw: object) -> Compute:
    return Compute("n", "tosca.nodes.Compute", **kw)  # type: ignore[arg-type]


def ids(ranking) -> list[str]:
    return [c.site.id for c in ranking.candidates]


def test_user_order_among_fitting_sites():
    sites = [site("a", order=0), site("b", order=1)]
    infos = {"a": SiteInfo(sites[0], SMALL), "b": SiteInfo(sites[1], BIG)}
    assert ids(rank(node(num_cpus=2), sites, infos)) == ["a", "b"]
    ranking = rank(node(num_cpus=8), sites, infos)
    assert ids(ranking) == ["b"]
    assert "no flavor fits" in ranking.excluded["a"]


def test_named_sites_only_in_the_named_order():
    sites = [site("a", order=0), site("b", order=1), site("c", order=2)]
    infos = {s.id: SiteInfo(s, BIG) for s in sites}
    assert ids(rank(node(cloud_id="c, a"), sites, infos)) == ["c", "a"]
    ranking = rank(node(cloud_id="zz"), sites, infos)
    assert ids(ranking) == [] and "no credentials" in ranking.excluded["zz"]


def test_image_urls_pick_their_cloud():
    sites = [site("ost", host="https://keystone.a:5000"), site("aws", "EC2", 1),
             site("ost2", host="keystone.b", order=2)]  # fmt: skip
    infos = {s.id: SiteInfo(s, BIG) for s in sites}
    assert ids(rank(node(image="aws://us-east-1/ami-1"), sites, infos)) == ["aws"]
    ranking = rank(node(image="ost://keystone.a/abc"), sites, infos)
    assert ids(ranking) == ["ost"] and "another OpenStack" in ranking.excluded["ost2"]


def test_quota_without_room_excludes():
    sites = [site("a"), site("b", order=1)]
    full = SiteInfo(sites[0], BIG, quotas={"instances": QuotaUse(10, 10)})
    infos = {"a": full, "b": SiteInfo(sites[1], BIG, quotas={"instances": QuotaUse(1, -1)})}
    ranking = rank(node(), sites, infos)
    assert ids(ranking) == ["b"] and "no instance left" in ranking.excluded["a"]
    tight = {"a": SiteInfo(sites[0], BIG, quotas={"ram": QuotaUse(7000, 8000)}), "b": infos["b"]}
    assert ids(rank(node(mem_size=2 * GB), sites, tight)) == ["b"]


def test_unreadable_sites_are_tried_last():
    sites = [site("down"), site("up", order=1)]
    infos = {"down": SiteInfo(sites[0], error="connection refused"), "up": SiteInfo(sites[1], BIG)}
    ranking = rank(node(), sites, infos)
    assert ids(ranking) == ["up", "down"]
    assert [c.known_fit for c in ranking.candidates] == [True, False]


def test_local_site_takes_any_image():
    local = Site("local", "Local", {}, 0)
    assert ids(rank(node(image="ost://x/y"), [local], {})) == ["local"]


def test_an_os_request_needs_an_openstack_site_with_such_an_image():
    from orbis.providers.base import Image

    sites = [site("a"), site("b", order=1), site("aws", "EC2", 2)]
    ubuntu = Image("1", "Ubuntu 22.04", "ost://a/1", "ubuntu", "22.04")
    centos = Image("2", "CentOS 7", "ost://b/2", "centos", "7")
    infos = {"a": SiteInfo(sites[0], BIG, [ubuntu]), "b": SiteInfo(sites[1], BIG, [centos]),
             "aws": SiteInfo(sites[2], BIG, [])}  # fmt: skip
    ranking = rank(node(os_distribution="ubuntu", os_version="22.04"), sites, infos)
    assert ids(ranking) == ["a", "aws"]  # EC2 finds public images at launch
    assert ranking.excluded["b"] == "no ubuntu 22.04 image at this site"
    assert ids(rank(node(os_distribution="centos"), sites, infos)) == ["b", "aws"]


def test_container_images_go_to_kubernetes_or_local_only():
    sites = [site("ost"), site("k8s", "Kubernetes", 1), Site("here", "Local", {}, 2)]
    infos = {s.id: SiteInfo(s, BIG) for s in sites}
    ranking = rank(node(image="docker://nginx:1.27"), sites, infos)
    assert ids(ranking) == ["k8s", "here"]
    assert ranking.excluded["ost"] == "image docker://nginx:1.27 is for kubernetes/local clouds"
