"""Cloud endpoints named in a USER's auth line get the address rule of server-side fetches
(net/endpoints.py): the metadata service, loopback and private addresses are refused before any
provider is built or any connection made, with a per-site error naming the rule; the operator's
ORBIS_FETCH_ALLOW lets one through, and the operator's own sites (ORBIS_SITES) are not checked.
Real providers (OpenStack, Kubernetes) behind a real site registry; an audit hook lists every
connection the process makes, and a listener on 127.0.0.1 counts the ones it gets."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from orbis.placement.sites import EndpointRefused, SiteRegistry
from orbis.providers.base import ProviderError
from orbis.providers.sim import SimProvider
from orbis.testing.hostile_http import RebindingResolver
from orbis.testing.standins.openstack import OpenStackStandin

CONNECTS: list[str] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect":
        address = args[1]
        CONNECTS.append(str(address[0]) if isinstance(address, tuple) else str(address))


sys.addaudithook(_audit)


class Listener:
    """A TCP port on 127.0.0.1 that counts the connections it is offered."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    monkeypatch.delenv("ORBIS_FETCH_ALLOW", raising=False)
    found = Listener()
    yield found
    found.sock.close()


def openstack(host: str) -> dict[str, str]:
    return {"id": "ost", "type": "OpenStack", "host": host, "username": "u",
            "password": "p", "tenant": "t"}  # fmt: skip


def refusal(registry: SiteRegistry, line: dict[str, str]) -> str:
    [site] = registry.sites_for([line])
    with pytest.raises(EndpointRefused) as refused:
        registry.provider(site)
    info = registry.info(site)  # placement's view: a per-site error, the site unusable
    assert info.unusable and info.error == str(refused.value)
    return str(refused.value)


def test_metadata_and_loopback_endpoints_of_a_user_are_refused_unconnected(tmp_path, listener):
    registry = SiteRegistry(SimProvider(tmp_path / "sim.db"))
    CONNECTS.clear()
    why = refusal(registry, openstack("http://169.254.169.254:5000"))
    assert why.startswith("site ost: host refused: 169.254.169.254 is the cloud metadata")
    assert "(ORBIS_FETCH_ALLOW)" in why
    why = refusal(registry, openstack(f"http://127.0.0.1:{listener.port}"))
    assert "127.0.0.1 is a loopback address (ORBIS_FETCH_ALLOW)" in why
    kube = {"id": "k8s", "type": "Kubernetes", "host": f"127.0.0.1:{listener.port}",
            "token": "t"}  # fmt: skip
    assert "loopback address" in refusal(registry, kube)
    private = refusal(registry, openstack("https://10.1.2.3:5000/v3"))
    assert "10.1.2.3 is a private address" in private
    assert "169.254.169.254" not in CONNECTS and "10.1.2.3" not in CONNECTS
    assert listener.accepted == 0


def test_the_allow_list_lets_an_endpoint_through_and_operator_sites_are_trusted(
    tmp_path, listener, monkeypatch
) -> None:
    line = openstack(f"http://127.0.0.1:{listener.port}")
    monkeypatch.setenv("ORBIS_FETCH_ALLOW", f"127.0.0.1:{listener.port}")
    registry = SiteRegistry(SimProvider(tmp_path / "sim.db"))
    [site] = registry.sites_for([line])
    assert registry.provider(site) is not None  # built: the rule let it through
    monkeypatch.delenv("ORBIS_FETCH_ALLOW")
    registry = SiteRegistry(SimProvider(tmp_path / "sim.db"), operator_lines=[line])
    [site] = registry.sites_for([])
    assert site.shared and registry.provider(site) is not None


def test_a_users_keystone_cannot_point_the_server_at_an_internal_address(
    tmp_path, listener, monkeypatch
) -> None:
    """The auth URL is allowed (the stand-in on loopback, listed in ORBIS_FETCH_ALLOW), but its
    token's catalogue sends Nova to the metadata address and Neutron to a listener on
    loopback that the allow list does not name: the provider refuses before calling either."""
    internal = {"compute": "http://169.254.169.254/compute/v2.1",
                "network": f"http://127.0.0.1:{listener.port}/network"}  # fmt: skip
    with OpenStackStandin(catalog_urls=internal) as cloud:
        monkeypatch.setenv("ORBIS_FETCH_ALLOW", urlsplit(cloud.url).netloc)
        registry = SiteRegistry(
            SimProvider(tmp_path / "sim.db"), options={"openstack": cloud.fast_options}
        )
        line = cloud.auth_line("3.x_password")
        [site] = registry.sites_for([line])
        provider = registry.provider(site)  # the auth URL passes the rule
        CONNECTS.clear()
        with pytest.raises(ProviderError) as refused:
            provider.flavors()
        why = str(refused.value)
        assert "Keystone catalogue's compute endpoint refused: 169.254.169.254 is the cloud" in why
        assert "(ORBIS_FETCH_ALLOW)" in why
        assert "169.254.169.254" not in CONNECTS and listener.accepted == 0
        # the operator's own site with the same catalogue is trusted, as its auth URL is
        trusted = SiteRegistry(SimProvider(tmp_path / "sim2.db"), operator_lines=[line],
                               options={"openstack": cloud.fast_options})  # fmt: skip
        [site] = trusted.sites_for([])
        assert site.shared and trusted.provider(site).check_catalogue is False  # type: ignore[attr-defined]


def test_a_users_keystone_listing_public_endpoints_is_used(tmp_path, monkeypatch) -> None:
    with OpenStackStandin() as cloud:  # every endpoint is the stand-in itself (allowed)
        monkeypatch.setenv("ORBIS_FETCH_ALLOW", urlsplit(cloud.url).netloc)
        registry = SiteRegistry(
            SimProvider(tmp_path / "sim.db"), options={"openstack": cloud.fast_options}
        )
        [site] = registry.sites_for([cloud.auth_line("3.x_password")])
        provider = registry.provider(site)
        assert provider.check_catalogue is True  # type: ignore[attr-defined]
        assert provider.flavors()  # the catalogue passed the rule and the SDK used it


# --- DNS rebinding: the SDKs' connections are checked when made (net/guarded.py) -------------


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> RebindingResolver:
    """127.0.0.1 is allowed (the operator's list), 127.0.0.2 is not."""
    resolver = RebindingResolver("cloud.rebind.example")
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setenv("ORBIS_FETCH_ALLOW", "127.0.0.1/32")
    CONNECTS.clear()
    return resolver


def test_an_openstack_endpoint_rebound_after_the_check_is_never_connected_to(
    tmp_path, rebinding
) -> None:
    with OpenStackStandin() as cloud:
        registry = SiteRegistry(
            SimProvider(tmp_path / "sim.db"), options={"openstack": cloud.fast_options}
        )
        line = cloud.auth_line("3.x_password")
        line["host"] = line["host"].replace("127.0.0.1", rebinding.name)
        [site] = registry.sites_for([line])
        provider = registry.provider(site)  # the check saw 127.0.0.1: allowed
        with pytest.raises(ProviderError, match=r"\(127\.0\.0\.2\) is a loopback address"):
            provider.flavors()
    assert rebinding.lookups >= 2
    assert "127.0.0.2" not in CONNECTS


def test_a_kubernetes_endpoint_rebound_after_the_check_is_never_connected_to(
    tmp_path, listener, rebinding
) -> None:
    registry = SiteRegistry(SimProvider(tmp_path / "sim.db"))
    line = {"id": "k8s", "type": "Kubernetes", "token": "t",
            "host": f"http://{rebinding.name}:{listener.port}"}  # fmt: skip
    [site] = registry.sites_for([line])
    provider = registry.provider(site)
    with pytest.raises(ProviderError, match=r"\(127\.0\.0\.2\) is a loopback address"):
        provider.list_owned()
    assert "127.0.0.2" not in CONNECTS


def test_an_oscar_endpoint_rebound_after_the_check_is_never_connected_to(rebinding) -> None:
    from orbis.providers.oscar.client import OscarClient, OscarError, OscarTarget

    client = OscarClient(OscarTarget(f"http://{rebinding.name}:8080", token="t"))
    with pytest.raises(OscarError, match=r"\(127\.0\.0\.2\) is a loopback address"):
        client.list_services()
    assert rebinding.lookups == 2 and "127.0.0.2" not in CONNECTS
