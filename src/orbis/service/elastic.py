"""The elastic view of an infrastructure: its pools and knobs, workers with their Slurm and
Orbis states, pending demand and the latest decisions with their reasons (orbis.elastic)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from orbis.auth import Identity
from orbis.elastic import state as saved
from orbis.service.core import ServiceBase
from orbis.service.errors import NotFoundError


class ElasticMixin(ServiceBase):
    def elastic(self, who: Identity, infra_id: str) -> dict[str, Any]:
        row = self.infrastructure(who, infra_id)
        cluster = self.template(row).elastic
        if cluster is None:
            raise NotFoundError("This infrastructure is not an elastic cluster")
        state = saved.load(self.store, row.id)
        return {
            "id": row.id,
            "lrms": cluster.lrms,
            "front": cluster.front,
            "partition": cluster.partition,
            "pools": [asdict(p) for p in cluster.pools],
            "knobs": asdict(cluster.knobs),
            "monitor": self.leases.holder_of(f"elastic:{row.id}"),
            "error": state.error,
            **({"view": state.view} if state.view else {}),
            "join_failures": state.join_failures,
            "decisions": state.decisions,
            # the stream's `after` for decisions to come (orbis elastic --follow)
            "last_event": self.store.last_event_id(row.id),
        }
