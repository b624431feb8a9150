"""Chameleon's Blazar leases (providers/blazar.py) for `reservation = host|instance` in the
auth line: the infrastructure's lease, and the flavor a reserved host is launched with.
"""

from __future__ import annotations

from orbis.model.infrastructure import Compute
from orbis.placement.fit import GB
from orbis.providers.base import NodeSpec
from orbis.providers.blazar import Blazar, Lease, lease_name
from orbis.providers.openstack.catalogue import Catalogue


class Leases(Catalogue):
    """The Blazar lease a node launches into."""

    def _blazar(self) -> Blazar:
        return Blazar(self.conn.session, site=self.site, region=self.region,
                      poll_interval=self.poll_interval, timeout=self.timeout)  # fmt: skip

    def _lease(self, spec: NodeSpec, compute: Compute) -> Lease:
        assert self.reservation is not None
        entry = self.reservation.reservation(
            max(compute.count, 1), compute.num_cpus, compute.mem_size,
            -(-compute.disk_size // GB) if compute.disk_size else None)  # fmt: skip
        with self._infra_locks[spec.infrastructure_id]:
            return self._blazar().ensure(lease_name(spec.infrastructure_id), self.reservation,
                                         entry)  # fmt: skip

    def _host_flavor(self, compute: Compute) -> str:
        """Bare-metal reservations: the site's bare-metal flavor when it has one."""
        assert self.reservation is not None
        named = [f for f in self.flavors() if f.name == self.reservation.flavor]
        return named[0].id if named else self._choose_flavor(compute).id
