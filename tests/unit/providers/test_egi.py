"""EGI FedCloud discovery against the cloud-info + Keystone stand-in (real httpx, real HTTP)."""

from __future__ import annotations

import logging

import httpx
import pytest

from orbis.model.infrastructure import Compute
from orbis.providers.base import Flavor, NotFound, ProviderAuthError, ProviderError, Transient
from orbis.providers.egi import (
    ENV_CLOUD_INFO_URL,
    CloudInfo,
    cloud_info,
    expand_auth,
    keystone_base,
    keystone_project,
    os_of,
    parse_egi_url,
    rank_sites,
)
from orbis.testing.standins.egi import EgiStandin

VO = "vo.access.egi.eu"
FEDCLOUD = "fedcloud.egi.eu"
TOKEN = "test-access-token-alice"  # the stand-in's Keystone accepts this one
GB = 1024**3


@pytest.fixture
def egi():
    with EgiStandin() as standin:
        yield standin


@pytest.fixture
def info(egi):
    with CloudInfo(egi.url, timeout=0.3) as client:
        yield client


# -- cloud-info client ---------------------------------------------------------------------------
def test_sites_for_a_vo_come_from_one_singular_call_with_projects(egi, info):
    sites = info.sites(VO)
    assert [s.name for s in sites] == ["SITE-ALPHA", "SITE-BETA", "SITE-DELTA"]
    assert sites[0].project(VO).id == "a1f0c6d2"
    assert sites[2].project(VO) is None  # the site without the VO's project
    # IM's plural-path bug (/sites/<name>/<vo>/project) must not come back
    assert egi.paths() == [f"/sites/?include_projects=true&vo_name={VO}"]


def test_one_site_and_its_projects(egi, info):
    site = info.site("SITE-BETA")
    assert (site.hostname, site.keystone) == (
        "cloud.beta.example",
        "https://cloud.beta.example/identity",
    )
    assert [p.name for p in info.projects("SITE-ALPHA")] == [VO, FEDCLOUD]
    assert info.vos() == [FEDCLOUD, VO]
    with pytest.raises(NotFound, match="SITE-NOWHERE"):
        info.site("SITE-NOWHERE")


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://keystone.alpha.example:5000/v3/", "https://keystone.alpha.example:5000"),
        ("https://cloud.beta.example/identity/v3", "https://cloud.beta.example/identity"),
        ("https://keystone.gamma.example:443/v3", "https://keystone.gamma.example:443"),
        ("https://keystone.example:5000", "https://keystone.example:5000"),
        ("https://keystone.example:5000/", "https://keystone.example:5000"),
    ],
)
def test_keystone_base_drops_the_trailing_slash_then_the_last_path_part(url, base):
    assert keystone_base(url) == base


@pytest.mark.parametrize(
    ("egi_id", "name", "expected"),
    [
        ("egi_vm_images/ubuntu:24.04", "", ("ubuntu", "24.04")),
        ("egi_vm_images/almalinux:9", "", ("almalinux", "9")),
        (
            "egi.small.appliance",
            "Image for EGI Docker [Ubuntu/22.04/VirtualBox]",
            ("ubuntu", "22.04"),
        ),
        ("whatever", "EGI CentOS Stream 9", ("centos", "9")),
        ("whatever", "EGI Rocky Linux", ("rocky", None)),
        ("something", "A custom appliance", (None, None)),
    ],
)
def test_os_comes_from_the_egi_id_else_the_name(egi_id, name, expected):
    assert os_of(egi_id, name) == expected


def test_vo_images_become_orbis_images_newest_version_only(info):
    images = {i.url: i for i in info.images(VO)}
    ubuntu = images[f"egi://SITE-ALPHA/egi_vm_images/ubuntu:24.04?{VO}"]
    # three versions at ALPHA: the highest wins, and only the part after '#' is the Glance id
    assert ubuntu.id == "9a1b2c3d-0002"
    assert (ubuntu.os_distro, ubuntu.os_version) == ("ubuntu", "24.04")
    alma = images[f"egi://SITE-ALPHA/egi_vm_images/almalinux:9?{VO}"]
    assert (alma.os_distro, alma.os_version) == ("almalinux", "9")
    assert images[f"egi://SITE-BETA/egi.small.appliance?{VO}"].os_version == "22.04"
    assert len(images) == 5  # ALPHA 2, BETA 2, DELTA 1: one per (site, egi_id)
    assert [i.url for i in info.images(FEDCLOUD, site="SITE-GAMMA")] == [
        f"egi://SITE-GAMMA/egi_vm_images/ubuntu:22.04?{FEDCLOUD}"
    ]


def test_answers_are_cached_until_the_ttl_or_a_refresh(egi):
    now = [0.0]
    with CloudInfo(egi.url, ttl=60, clock=lambda: now[0]) as info:
        first = info.sites(VO)
        assert len(egi.paths()) == 1
        assert info.sites(VO) == first
        info.site_images("SITE-ALPHA", VO)
        info.site_images("SITE-ALPHA", VO)
        assert len(egi.paths()) == 2  # the second calls made no request
        info.refresh()
        info.sites(VO)
        assert len(egi.paths()) == 3
        now[0] = 61.0  # past the TTL
        info.sites(VO)
        assert len(egi.paths()) == 4


def test_base_url_from_the_environment(egi, monkeypatch):
    monkeypatch.setenv(ENV_CLOUD_INFO_URL, egi.url + "/")
    with CloudInfo() as info:
        assert info.base_url == egi.url
        assert info.site("SITE-GAMMA").name == "SITE-GAMMA"
    assert egi.paths() == ["/site/SITE-GAMMA/"]


@pytest.mark.parametrize(
    ("fault", "error"),
    [(503, Transient), (429, Transient), ("hang", Transient), (400, ProviderError)],
)
def test_cloud_info_failures_are_typed(egi, info, fault, error):
    egi.fail_next(fault)
    with pytest.raises(error, match="cloud-info /sites/"):
        info.sites(VO)
    assert [s.name for s in info.sites(VO)]  # a failure is not cached


# -- egi:// image URLs ---------------------------------------------------------------------------
def test_parse_egi_url():
    assert parse_egi_url(f"egi://SITE-ALPHA/egi_vm_images/ubuntu:24.04?{VO}") == (
        "SITE-ALPHA",
        "egi_vm_images/ubuntu:24.04",
        VO,
    )
    assert parse_egi_url("egi://SITE-ALPHA/ubuntu") == ("SITE-ALPHA", "ubuntu", None)
    with pytest.raises(NotFound):
        parse_egi_url("ost://keystone.alpha.example/1234")


def test_resolution_takes_the_highest_version_and_the_part_after_hash(info):
    url = f"egi://SITE-ALPHA/egi_vm_images/ubuntu:24.04?{VO}"
    # versions 2023.12.31, 2024.06.01 and 2024.11.15 (id "af3e5a1c#9a1b2c3d-0002")
    assert info.resolve_image(url) == "9a1b2c3d-0002"
    assert info.resolve_image(f"egi://SITE-GAMMA/egi_vm_images/ubuntu:22.04?{FEDCLOUD}") == (
        "gamma-2204-new"
    )


def test_the_vo_comes_from_the_url_else_the_credential(info):
    # no VO in the URL: the credential's
    bare = "egi://SITE-ALPHA/egi_vm_images/ubuntu:22.04"
    assert info.resolve_image(bare, vo=FEDCLOUD) == "5e5e5e5e-2204"
    # the URL's VO wins over the credential's (ubuntu:24.04 exists only for vo.access)
    url = f"egi://SITE-ALPHA/egi_vm_images/ubuntu:24.04?{VO}"
    assert info.resolve_image(url, vo=FEDCLOUD) == "9a1b2c3d-0002"
    with pytest.raises(NotFound, match="no VO"):
        info.resolve_image(bare)
    with pytest.raises(NotFound, match="no image egi_vm_images/ubuntu:22.04 for VO"):
        info.resolve_image(bare, vo=VO)


def test_the_image_site_must_be_the_credentials_keystone_host(info):
    url = f"egi://SITE-ALPHA/egi_vm_images/ubuntu:24.04?{VO}"
    assert info.resolve_image(url, keystone_host="https://keystone.alpha.example:5000")
    assert info.resolve_image(url, keystone_host="keystone.alpha.example")
    with pytest.raises(NotFound, match="SITE-ALPHA, but this cloud is cloud.beta.example"):
        info.resolve_image(url, keystone_host="https://cloud.beta.example/identity")


def test_unknown_site_or_image_is_not_found(info):
    with pytest.raises(NotFound, match="SITE-NOWHERE"):
        info.resolve_image(f"egi://SITE-NOWHERE/egi_vm_images/ubuntu:24.04?{VO}")
    with pytest.raises(NotFound, match="debian"):
        info.resolve_image(f"egi://SITE-ALPHA/egi_vm_images/debian:12?{VO}")
    # GAMMA does not support vo.access at all
    with pytest.raises(NotFound, match="SITE-GAMMA has no image"):
        info.resolve_image(f"egi://SITE-GAMMA/egi_vm_images/ubuntu:22.04?{VO}")


# -- credentials ---------------------------------------------------------------------------------
def test_an_egi_line_becomes_an_openstack_oidc_line(info):
    line = {
        "id": "mysite",
        "type": "EGI",
        "host": "SITE-ALPHA",
        "vo": VO,
        "token": "tok-1",
        "api_version": "2.1",
    }
    other = {"id": "ost", "type": "OpenStack", "host": "https://k.example:5000", "username": "u"}
    lines, warnings = expand_auth([other, line], info)
    assert warnings == []
    assert lines == [
        other,
        {
            "id": "mysite",
            "type": "OpenStack",
            "host": "https://keystone.alpha.example:5000",
            "username": "egi.eu",
            "tenant": "openid",
            "password": "tok-1",
            "auth_version": "3.x_oidc_access_token",
            "domain": "a1f0c6d2",
            "vo": VO,
            "api_version": "2.1",
        },
    ]


def test_an_egiis_line_becomes_one_line_per_site_of_the_vo(info):
    lines, warnings = expand_auth([{"type": "EGIIS", "vo": FEDCLOUD, "token": "tok-2"}], info)
    assert warnings == []
    assert [(li["id"], li["domain"]) for li in lines] == [
        ("SITE-ALPHA", "a2b7e913"),
        ("SITE-GAMMA", "c0ffee01"),
        ("SITE-DELTA", "d7e11c55"),
    ]
    assert lines[1]["host"] == "https://keystone.gamma.example:443"
    assert {li["password"] for li in lines} == {"tok-2"}


def test_an_unknown_site_is_dropped_with_a_warning(info):
    lines, warnings = expand_auth(
        [
            {"id": "s", "type": "EGI", "host": "SITE-NOWHERE", "vo": VO, "token": "tok-3"},
            {"id": "t", "type": "EGI", "host": "SITE-BETA", "vo": VO},
        ],
        info,
    )
    assert lines == []
    assert "auth line s: dropped" in warnings[0] and "SITE-NOWHERE" in warnings[0]
    assert warnings[1] == "auth line t: dropped, EGI needs token"


def test_without_a_cloud_info_project_keystone_is_asked(egi, info):
    line = {"id": "d", "type": "EGI", "host": "SITE-DELTA", "vo": VO, "token": TOKEN}
    lines, warnings = expand_auth([line], info)
    assert warnings == []
    # "VO:vo.access.egi.eu" matches ^(VO:|vo_)*<vo>$; "vo.access.egi.eu-training" does not
    assert lines[0]["domain"] == "d0d0aa11"
    assert lines[0]["host"] == f"{egi.url}/keystone/SITE-DELTA"
    ks = [p for p in egi.paths() if p.startswith("/keystone/")]
    assert ks == [
        "/keystone/SITE-DELTA/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/openid/auth",
        "/keystone/SITE-DELTA/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/oidc/auth",
        "/keystone/SITE-DELTA/v3/auth/projects",
    ]
    egi.clear()
    assert expand_auth([line], info)[0] == lines  # the VO's project is cached, not re-asked
    assert egi.paths() == []


def test_malformed_cloud_info_entries_are_skipped_with_a_warning(egi, info, caplog):
    egi.sites.append({"id": "55555g0", "url": "https://nameless.example/v3", "vos": [VO],
                      "projects": [{"id": "e0", "name": VO}]})  # fmt: skip
    egi.sites[0]["projects"] += [{"name": "broken.vo"}, {"id": "f00"}]
    egi.images.append({"site": "SITE-ALPHA", "vo": VO, "egi_id": "egi_vm_images/x:1"})
    with caplog.at_level(logging.WARNING, logger="orbis.providers.egi"):
        assert [s.name for s in info.sites(VO)] == ["SITE-ALPHA", "SITE-BETA", "SITE-DELTA"]
        assert [p.name for p in info.sites(VO)[0].projects] == [VO, FEDCLOUD]
        assert [p.name for p in info.projects("SITE-ALPHA")] == [VO, FEDCLOUD]
        assert "egi_vm_images/x:1" not in {i.egi_id for i in info.site_images("SITE-ALPHA", VO)}
        lines, warnings = expand_auth([{"type": "EGIIS", "vo": VO, "token": TOKEN}], info)
    assert [li["id"] for li in lines] == ["SITE-ALPHA", "SITE-BETA", "SITE-DELTA"]
    assert lines[0]["domain"] == "a1f0c6d2" and warnings == []
    logged = [r.getMessage() for r in caplog.records]
    assert any("site entry without a name" in m for m in logged)
    assert any("SITE-ALPHA: project entry without id or name" in m for m in logged)
    assert any("image entries without id" in m for m in logged)


def test_a_failing_project_list_falls_back_to_the_vo_name(egi, info):
    line = {"id": "a", "type": "EGI", "host": "SITE-ALPHA", "vo": VO, "token": TOKEN}
    egi.fail_next(503, after=1)  # /site/SITE-ALPHA/ answers, its /projects fails
    lines, warnings = expand_auth([line], info)
    assert egi.paths()[-1] == "/site/SITE-ALPHA/projects"
    assert lines[0]["domain"] == VO and lines[0]["host"] == "https://keystone.alpha.example:5000"
    assert "SITE-ALPHA: cannot list its projects" in warnings[0] and "503" in warnings[0]
    assert TOKEN not in warnings[0]
    assert expand_auth([line], info) == ([{**lines[0], "domain": "a1f0c6d2"}], [])  # not cached


def test_fedcloudclient_project_name_rule():
    with EgiStandin() as egi:
        base = f"{egi.url}/keystone/SITE-DELTA"
        assert keystone_project(base, FEDCLOUD, TOKEN) == "d0d0cc33"  # "vo_fedcloud.egi.eu"
        with pytest.raises(NotFound, match="none of your projects belongs to VO vo.other"):
            keystone_project(base, "vo.other", TOKEN)


def test_tokens_never_appear_in_errors_or_logs(egi, info, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "eyJ-secret-token-of-bob"
    base = f"{egi.url}/keystone/SITE-DELTA"
    # this Keystone echoes the bearer token in its 401 body (so the test can fail)
    raw = httpx.post(
        f"{base}/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/oidc/auth",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert raw.status_code == 401 and secret in raw.text
    with pytest.raises(ProviderAuthError) as err:
        keystone_project(base, VO, secret)
    assert secret not in str(err.value) and secret not in repr(err.value)
    lines, warnings = expand_auth(
        [
            {"id": "d", "type": "EGI", "host": "SITE-DELTA", "vo": VO, "token": secret},
            {"id": "x", "type": "EGI", "host": "SITE-NOWHERE", "vo": VO, "token": secret},
        ],
        info,
    )
    assert lines[0]["domain"] == VO  # Keystone refused: IM's fallback, the VO name
    assert "no project found for VO" in warnings[0] and "credentials refused" in warnings[0]
    egi.fail_next("hang")
    with pytest.raises(Transient) as slow:
        expand_auth([{"type": "EGIIS", "vo": VO, "token": secret}], info)
    assert secret not in str(slow.value)
    assert secret not in " ".join(warnings)
    assert caplog.records and secret not in caplog.text


def test_tokens_are_passed_through_never_refreshed_or_kept(info):
    line = {"type": "EGI", "host": "SITE-BETA", "vo": VO}
    first, _ = expand_auth([line | {"token": "token-one"}], info)
    second, _ = expand_auth([line | {"token": "token-two"}], info)
    assert first[0]["password"] == "token-one" and second[0]["password"] == "token-two"
    assert first[0]["id"] == "SITE-BETA"  # no id: the site name


# -- choosing a site ------------------------------------------------------------------------------
FLAVORS = {
    "SITE-ALPHA": [Flavor("a1", "m1.small", 1, 2048, 20), Flavor("a2", "m1.medium", 2, 4096, 40)],
    "SITE-BETA": [Flavor("b1", "tiny", 1, 1024, 10)],
    "SITE-GAMMA": [Flavor("g1", "huge", 16, 65536, 100)],
    "SITE-DELTA": [Flavor("d1", "large", 4, 8192, 80)],
}


def node(**kw) -> Compute:
    return Compute(name="vm", type="tosca.nodes.Compute", num_cpus=2, mem_size=4 * GB, **kw)


def test_sites_are_ranked_by_image_and_flavor_with_reasons(info):
    ranking = rank_sites(
        info, VO, node(os_distribution="Ubuntu", os_version="24.04"), FLAVORS.__getitem__
    )
    assert [(c.site.name, c.flavor.name, c.image.id) for c in ranking.choices] == [
        ("SITE-ALPHA", "m1.medium", "9a1b2c3d-0002"),  # the smallest fitting flavor ranks first
        ("SITE-DELTA", "large", "delta-2404"),
    ]
    assert ranking.best.image.url == f"egi://SITE-ALPHA/egi_vm_images/ubuntu:24.04?{VO}"
    # BETA has the image but no room; GAMMA does not support the VO so is not considered
    assert list(ranking.rejected) == ["SITE-BETA"]
    assert ranking.rejected["SITE-BETA"].startswith("no flavor fits vm (closest: tiny:")
    assert "SITE-BETA: no flavor fits" in ranking.explain()


def test_an_egi_image_url_pins_the_site(info):
    compute = node(image=f"egi://SITE-DELTA/egi_vm_images/ubuntu:24.04?{VO}")
    ranking = rank_sites(info, VO, compute, FLAVORS.__getitem__)
    assert [c.site.name for c in ranking.choices] == ["SITE-DELTA"]
    assert ranking.choices[0].image.id == "delta-2404"
    assert ranking.rejected["SITE-ALPHA"] == "the template asks for an image at SITE-DELTA"


def test_os_version_prefix_and_missing_images_are_explained(info):
    ranking = rank_sites(
        info, FEDCLOUD, node(os_distribution="ubuntu", os_version="22"), FLAVORS.__getitem__
    )
    assert [c.site.name for c in ranking.choices] == ["SITE-ALPHA", "SITE-DELTA", "SITE-GAMMA"]
    assert ranking.choices[2].image.id == "gamma-2204-new"
    alma = rank_sites(info, FEDCLOUD, node(os_distribution="almalinux"), FLAVORS.__getitem__)
    assert alma.choices == []
    assert alma.rejected == dict.fromkeys(
        FLAVORS.keys() - {"SITE-BETA"}, "no almalinux image for VO fedcloud.egi.eu"
    )


def test_flavor_listing_failures_and_unnamed_os_are_reasons(info):
    def flavors(site: str) -> list[Flavor]:
        if site == "SITE-DELTA":
            raise ProviderAuthError("Keystone refused the token")
        return FLAVORS[site]

    ranking = rank_sites(info, VO, node(os_distribution="ubuntu"), flavors)
    assert ranking.rejected["SITE-DELTA"] == "cannot list flavors: Keystone refused the token"
    assert [c.site.name for c in ranking.choices] == ["SITE-ALPHA"]
    bare = rank_sites(info, VO, node(), flavors)
    assert set(bare.rejected.values()) == {"the node names neither an image nor an OS distribution"}


def test_an_openstack_image_url_pins_the_site_by_keystone_host(info):
    compute = node(image="ost://keystone.gamma.example/gamma-custom")
    ranking = rank_sites(info, FEDCLOUD, compute, FLAVORS.__getitem__)
    assert [(c.site.name, c.image.id) for c in ranking.choices] == [("SITE-GAMMA", "gamma-custom")]
    assert "is not at this site" in ranking.rejected["SITE-ALPHA"]


def test_the_shared_client_follows_the_environment(egi, monkeypatch):
    monkeypatch.setenv(ENV_CLOUD_INFO_URL, egi.url)
    lines, _ = expand_auth([{"type": "EGIIS", "vo": VO, "token": "t"}])  # as placement calls it
    assert [li["id"] for li in lines] == ["SITE-ALPHA", "SITE-BETA", "SITE-DELTA"]
    assert cloud_info() is cloud_info() and cloud_info().base_url == egi.url


def test_a_keystone_answer_that_is_not_json_is_a_provider_error(egi, info):
    base = f"{egi.url}/keystone/SITE-DELTA"
    egi.fail_next("garbage", after=2)  # openid 404, oidc 201, then the project list
    with pytest.raises(ProviderError, match="not JSON"):
        keystone_project(base, VO, TOKEN)
    # expand_auth keeps IM's fallback (the VO name) instead of failing every line
    egi.fail_next("garbage", after=4)  # /site/SITE-DELTA/ and its projects come first
    line = {"id": "d", "type": "EGI", "host": "SITE-DELTA", "vo": VO, "token": TOKEN}
    lines, warnings = expand_auth([line], info)
    assert lines[0]["domain"] == VO and "not JSON" in warnings[0]
