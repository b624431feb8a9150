"""Sites of the local back-end: several "clouds" on one machine, for multi-site infrastructures.

A site is an auth line `id = siteA; type = LocalSite` (the user's, or the operator's in
ORBIS_SITES). Each site of an infrastructure is its own isolated bridge network (podman's
`isolate`, see local_network.py), so a node of site A cannot reach a private address of site B;
the infrastructure's own network (`orbis-<infra>`, where the recipe runner sits) stands for the
internet: only nodes with a public address join it. Like a cloud, a site's private addresses are
not reachable from the service: a private-only node is reached through an SSH jump via a public
node of its site (the deployer chooses it, see `Machines._jump_host`).

A template picks a site as it picks a cloud: placement `cloud_id: siteA`, or the image
`local://siteA` (RADL `disk.0.image.url`); `local://siteA/NAME` runs local image NAME there.
"""

from __future__ import annotations

import dataclasses
import re

from docker.models.containers import Container

from orbis.providers.base import Machine, NodeSpec
from orbis.providers.local import LocalProvider, network_name

LABEL_SITE = "orbis.site"
# A site's private network allows jumbo frames, as a cloud's commonly does (an AWS VPC 9001
# bytes, GCP up to 8896): the overlay's figures depend on it (docs/overlay.md, "Figures").
# The network standing for the internet keeps 1500 bytes.
SITE_MTU = 9000
_SITE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def site_network_name(infrastructure_id: str, site_id: str) -> str:
    """The private network of one site of an infrastructure."""
    return f"{network_name(infrastructure_id)}-site-{site_id.lower()}"


class LocalSiteProvider(LocalProvider):
    """The local back-end seen as one site: its own private network per infrastructure."""

    private_reachable = False  # as on a cloud: private nodes are reached through a public one

    def __init__(self, parent: LocalProvider, site_id: str) -> None:
        if not _SITE_ID.fullmatch(site_id):
            raise ValueError(f"local site id {site_id!r}: letters, digits, '.', '_', '-' only")
        super().__init__(parent._base_url, parent._timeout)
        self.site = site_id
        self.installation = parent.installation
        self.ssh_timeout = parent.ssh_timeout

    def prepare(self, infrastructure_id: str) -> None:
        self._ensure_network(infrastructure_id, network_name(infrastructure_id))
        self._network(infrastructure_id)

    def _network(self, infrastructure_id: str) -> str:
        return self._ensure_network(
            infrastructure_id, site_network_name(infrastructure_id, self.site), mtu=SITE_MTU
        )

    def _extra_networks(self, spec: NodeSpec) -> list[str]:
        if not spec.public:
            return []
        return [self._ensure_network(spec.infrastructure_id, network_name(spec.infrastructure_id))]

    def _labels(self, infrastructure_id: str) -> dict[str, str]:
        return {**super()._labels(infrastructure_id), LABEL_SITE: self.site}

    def _site_label(self) -> str | None:
        return self.site

    def _machine(self, container: Container, warnings: tuple[str, ...] = ()) -> Machine:
        """Private address on the site's network; public address on the shared one."""
        machine = super()._machine(container, warnings)
        infra = machine.infrastructure_id
        if not infra:
            return machine
        private = self._ip(container, site_network_name(infra, self.site))
        public = None
        if machine.public_ip:
            networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
            public = (networks.get(network_name(infra)) or {}).get("IPAddress") or None
        return dataclasses.replace(machine, private_ip=private, public_ip=public)
