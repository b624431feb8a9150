"""Sites from auth lines and the operator's file; providers built once; catalogue cached."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from orbis.placement.sites import SiteRegistry, configured_sites
from orbis.providers.base import Flavor, Machine, NodeSpec, Provider, ProviderError


class Counting(Provider):
    name = "counting"

    def __init__(self, auth: object = None, *, options: object = None) -> None:
        self.asked = 0

    def prepare(self, infrastructure_id: str) -> None: ...
    def launch(self, spec: NodeSpec) -> Machine: raise NotImplementedError
    def inspect(self, provider_id: str) -> Machine: raise NotImplementedError
    def destroy(self, provider_id: str) -> None: ...
    def cleanup(self, infrastructure_id: str) -> None: ...
    def list_owned(self) -> list[Machine]: return []

    def flavors(self) -> list[Flavor]:
        self.asked += 1
        return [Flavor("1", "f", 1, 1024)]


def test_no_cloud_line_means_the_local_back_end():
    registry = SiteRegistry(Counting())
    sites = registry.sites_for([{"id": "im", "type": "InfrastructureManager"}])
    assert [(s.id, s.local) for s in sites] == [("local", True)]
    assert registry.provider(sites[0]) is registry.default


def test_lines_in_order_then_operator_sites_without_duplicates(tmp_path, monkeypatch):
    path = tmp_path / "sites.yaml"
    path.write_text("- {id: shared, type: OpenStack, host: 'https://k:5000', password: env:PW}\n"
                    "- {id: ost, type: OpenStack, host: 'https://other'}\n")
    monkeypatch.setenv("PW", "s3cret")
    lines = configured_sites(str(path))
    assert lines[0]["password"] == "s3cret"
    registry = SiteRegistry(Counting(), operator_lines=lines)
    sites = registry.sites_for([{"id": "loc", "type": "Local"}, {"id": "ost", "type": "OpenStack"}])
    assert [(s.id, s.shared, s.preference) for s in sites] == [
        ("loc", False, 0), ("ost", False, 1), ("shared", True, 2)]
    assert "s3cret" not in repr(sites)


def test_unsupported_cloud_type_is_a_clear_error():
    registry = SiteRegistry(Counting())
    (site,) = registry.sites_for([{"id": "one", "type": "OpenNebula", "host": "x"}])
    try:
        registry.provider(site)
    except ProviderError as exc:
        assert "OpenNebula are not supported" in str(exc)
    else:
        raise AssertionError("no error")
    assert registry.info(site).error and "not supported" in registry.info(site).error


def test_catalogue_is_cached_until_refresh():
    registry = SiteRegistry(Counting(), classes={"openstack": Counting})
    (site,) = registry.sites_for([{"id": "c", "type": "OpenStack"}])
    provider = registry.provider(site)
    assert isinstance(provider, Counting) and provider.site == "c"
    assert registry.provider(site) is provider  # built once
    assert registry.info(site).flavors[0].name == "f"
    registry.info(site)
    assert provider.asked == 1
    registry.info(site, refresh=True)
    assert provider.asked == 2


def test_an_egiis_line_becomes_the_vos_openstack_sites(monkeypatch):
    from orbis.providers.egi import ENV_CLOUD_INFO_URL
    from orbis.testing.standins.egi import EgiStandin

    with EgiStandin() as egi:
        monkeypatch.setenv(ENV_CLOUD_INFO_URL, egi.url)
        registry = SiteRegistry(Counting())
        sites = registry.sites_for([{"id": "egi", "type": "EGIIS", "vo": "vo.access.egi.eu",
                                     "token": "tok"}])  # fmt: skip
    assert [s.id for s in sites] == ["SITE-ALPHA", "SITE-BETA", "SITE-DELTA"]
    assert {s.type for s in sites} == {"OpenStack"}
    assert all(s.auth["auth_version"] == "3.x_oidc_access_token" for s in sites)
    assert all(s.auth["password"] == "tok" for s in sites)


def test_egi_discovery_down_is_a_site_with_the_error(monkeypatch):
    from orbis.providers.egi import ENV_CLOUD_INFO_URL

    monkeypatch.setenv(ENV_CLOUD_INFO_URL, "http://127.0.0.1:9")  # nothing listens there
    (site,) = SiteRegistry(Counting()).sites_for(
        [{"id": "egi", "type": "EGIIS", "vo": "v", "token": "tok"}])
    assert site.id == "egi" and "EGI discovery failed" in (site.warning or "")
    assert "tok" not in (site.warning or "")


class SlowLogin(Counting):
    """A provider whose construction (the cloud login) takes a while."""

    built = 0

    def __init__(self, auth: object = None, *, options: object = None) -> None:
        super().__init__(auth, options=options)
        type(self).built += 1
        time.sleep(0.2)

    def flavors(self) -> list[Flavor]:
        time.sleep(0.1)
        return super().flavors()


def test_concurrent_nodes_of_one_site_share_one_login_and_one_catalogue_read():
    SlowLogin.built = 0
    registry = SiteRegistry(Counting(), classes={"openstack": SlowLogin})
    (site,) = registry.sites_for([{"id": "c", "type": "OpenStack"}])
    with ThreadPoolExecutor(8) as pool:
        infos = list(pool.map(lambda _: registry.info(site), range(8)))
    assert SlowLogin.built == 1
    provider = registry.provider(site)
    assert isinstance(provider, SlowLogin) and provider.asked == 1
    assert all(info is infos[0] for info in infos)
