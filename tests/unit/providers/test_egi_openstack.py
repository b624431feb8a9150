"""An EGI AppDB image (egi://site/egi_id?vo) launched at an OpenStack site: cloud-info gives the
Glance id at that site, and the server boots from it."""

from __future__ import annotations

import copy

import pytest

from orbis.providers.base import NotFound
from orbis.providers.egi import ENV_CLOUD_INFO_URL
from orbis.testing.standins.egi import EgiStandin
from orbis.testing.standins.openstack import OpenStackStandin

from .test_openstack import UBUNTU, provider, spec, the_server

URL = "egi://SITE-DELTA/egi_vm_images/ubuntu:24.04?vo.access.egi.eu"


def test_egi_image_resolves_to_the_sites_glance_id(monkeypatch: pytest.MonkeyPatch) -> None:
    with EgiStandin() as egi, OpenStackStandin() as cloud:
        monkeypatch.setenv(ENV_CLOUD_INFO_URL, egi.url)
        # SITE-DELTA's Keystone is on 127.0.0.1, like the OpenStack stand-in; give its Glance
        # the image cloud-info lists for the VO there
        cloud.images["delta-2404"] = copy.deepcopy(cloud.images[UBUNTU]) | {"id": "delta-2404"}
        site = provider(cloud, vo="vo.access.egi.eu")
        site.launch(spec(image=URL))
        assert the_server(cloud)["image"]["id"] == "delta-2404"
        with pytest.raises(NotFound):  # SITE-ALPHA's image is not at this Keystone host
            site.launch(spec(infra="inf-2", image="egi://SITE-ALPHA/egi_vm_images/ubuntu:24.04"))
