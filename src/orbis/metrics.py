"""Prometheus metrics (`GET /metrics`).

Counted in the process: HTTP requests and their latency, lease take-overs. Read from the store
when scraped: work (infrastructures) by state, provider actions by kind and state, nodes by
provider and state; every server answers those alike. With `orbis server --workers N` the
process counters are shared through files (prometheus-client's multiprocess mode; the server
command sets PROMETHEUS_MULTIPROC_DIR before anything imports this module).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select

REQUESTS = Counter("orbis_http_requests", "HTTP requests answered",
                   ["method", "route", "status"])  # fmt: skip
LATENCY = Histogram(
    "orbis_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TAKEOVERS = Counter("orbis_lease_takeovers", "Leases taken over from a server that let them "
                    "expire (it died or lost the database)")  # fmt: skip

_ID = re.compile(r"^([0-9a-fA-F-]{8,}|\d+)$")


def route_of(path: str) -> str:
    """A path with its ids replaced (label values must be few): /infrastructures/{id}/vms/{id}"""
    return "/".join("{id}" if _ID.match(part) else part for part in path.split("/"))[:120]


class StoreCollector(Collector):
    """Gauges read from the database at each scrape (the same on every server)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from orbis.store.schema import ActionRow, InfrastructureRow, LockRow, NodeRow, utcnow

        work = GaugeMetricFamily("orbis_infrastructures", "Infrastructures not deleted, by "
                                 "phase", labels=["phase"])  # fmt: skip
        queue = GaugeMetricFamily("orbis_operations", "Queued operations (an infrastructure "
                                  "whose desired state is not brought about): waiting for a "
                                  "server, or running on one", labels=["state"])  # fmt: skip
        actions = GaugeMetricFamily("orbis_actions", "Provider actions recorded, by kind and "
                                    "state", labels=["kind", "state"])  # fmt: skip
        nodes = GaugeMetricFamily("orbis_nodes", "Nodes not deleted, by provider (site) and "
                                  "state", labels=["provider", "state"])  # fmt: skip
        now = utcnow()
        with self.store.session() as s:
            for phase, count in s.execute(
                select(InfrastructureRow.phase, func.count())
                .where(InfrastructureRow.deleted.is_(False)).group_by(InfrastructureRow.phase)
            ):  # fmt: skip
                work.add_metric([phase], count)
            pending = select(InfrastructureRow.id).where(
                InfrastructureRow.generation > InfrastructureRow.reconciled,
                InfrastructureRow.phase != "deleted",
            )
            ids = set(s.scalars(pending))
            held = {name.split(":", 1)[1] for name in s.scalars(
                select(LockRow.name).where(LockRow.holder != "", LockRow.expires_at > now))}
            queue.add_metric(["running"], len(ids & held))
            queue.add_metric(["waiting"], len(ids - held))
            for kind, status, count in s.execute(
                select(ActionRow.kind, ActionRow.status, func.count())
                .group_by(ActionRow.kind, ActionRow.status)
            ):  # fmt: skip
                actions.add_metric([kind, status], count)
            provider = func.coalesce(NodeRow.site, InfrastructureRow.provider)
            for where, state, count in s.execute(
                select(provider, NodeRow.state, func.count())
                .join(InfrastructureRow, InfrastructureRow.id == NodeRow.infrastructure_id)
                .where(NodeRow.deleted.is_(False)).group_by(provider, NodeRow.state)
            ):  # fmt: skip
                nodes.add_metric([where or "", state], count)
        yield from (work, queue, actions, nodes)


def exposition(store: Any) -> bytes:
    """The text format of every metric, this process's or (multiprocess) all workers'."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ProcessMetrics())
    registry.register(StoreCollector(store))
    return generate_latest(registry)


class _ProcessMetrics(Collector):
    """This process's own counters (the default registry holds them)."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client import REGISTRY

        yield from REGISTRY.collect()
