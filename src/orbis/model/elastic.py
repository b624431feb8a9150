"""An elastic cluster as written: which node is the batch system's front-end, which worker
nodes it may power on and off (in burst order), and the policy knobs.

Loaded from TOSCA (`tosca.nodes.indigo.ElasticCluster` with its `lrms` and `wn` requirements)
or RADL (systems with `ec3_max_instances`, chained by `ec3_if_fail`); the monitor
(orbis.elastic) acts on it. Language independent, like the rest of the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

from orbis.model.infrastructure import Position


@dataclass(frozen=True)
class Knobs:
    """Policy knobs; the defaults are the issue's (CLUES's own defaults differ: docs/elastic.md)."""

    idle_time: float = 300.0  # seconds a worker is idle before it is powered off
    max_booting: int = 2  # workers powering on at once
    cooldown: float = 0.0  # seconds after a power-on or -off before the next decision of that kind
    warm_spares: int = 0  # idle workers kept on beyond the demand
    join_retries: int = 3  # times a worker that never joins the LRMS is re-created
    boot_deadline: float = 600.0  # seconds a worker may take to join before it is judged failed
    poll: float = 2.0  # seconds between two reads of the LRMS (CLUES: 5)

    def with_values(self, values: dict[str, Any]) -> Knobs:
        """These knobs with `values` (name → number) applied; unknown names are ignored."""
        known = {f.name: f.type for f in fields(self)}
        given: dict[str, Any] = {k: (int(v) if known[k] == "int" else float(v))
                 for k, v in values.items() if k in known and v is not None}  # fmt: skip
        return replace(self, **given)


KNOB_NAMES = tuple(f.name for f in fields(Knobs))
# what a template may ask, per knob (users are untrusted: a poll of 0 would be a busy loop
# reading Slurm over SSH; millions of warm spares or booting workers make no sense)
KNOB_RANGES: dict[str, tuple[float, float]] = {
    "idle_time": (0, 30 * 86400), "max_booting": (0, 1000), "cooldown": (0, 86400),
    "warm_spares": (0, 1000), "join_retries": (0, 100), "boot_deadline": (10, 86400),
    "poll": (1, 3600),
}  # fmt: skip
NO_LIMIT = 1024  # the most workers of a pool that sets none (EC3's ec3_max_instances -1):
# the front-end's Slurm MaxNodeCount; the node quotas apply first
PARTITION = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,39}"  # a Slurm partition name Orbis writes
MAX_QUEUES = 32  # partitions one node type may serve


def queue_names(raw: Any) -> tuple[str, ...] | None:
    """The partitions of EC3's `ec3_node_queues_list` ('a,b', 'a b') or of a TOSCA list;
    None when empty, too many, or one is no partition name (the caller says where)."""
    items = raw if isinstance(raw, list) else re.split(r"[\s,]+", str(raw or ""))
    given = [i for i in items if str(i).strip()]
    names = [i.strip() for i in given if isinstance(i, str)]
    if not names or len(names) != len(given) or len(names) > MAX_QUEUES \
            or any(not re.fullmatch(PARTITION, n) for n in names):  # fmt: skip
        return None
    return tuple(dict.fromkeys(names))


def knob_problem(name: str, value: object) -> str | None:
    """Why `value` cannot be knob `name` (None: it can)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"must be a number, not {value!r}"
    low, high = KNOB_RANGES[name]
    if not low <= number <= high:
        return f"must be between {low:g} and {high:g}"
    return None


@dataclass(frozen=True)
class WorkerPool:
    """A worker node (Compute) the monitor may scale between `min` and `max` instances."""

    compute: str
    min: int = 0
    max: int = 1
    cpus: int = 1
    memory_mb: int = 0  # the batch system's RealMemory of a worker (0: not said)
    # EC3's RADL features (docs/elastic.md):
    names: tuple[str, ...] = ()  # ec3_node_pattern: the host names its workers take, in order
    reuse: bool = False  # ec3_reuse_nodes: powered off = stopped, and started again first
    destroy_interval: float = 0.0  # ec3_destroy_interval: seconds paid at a time (0: none)
    destroy_safe: float = 0.0  # ec3_destroy_safe: power off this long before a period ends
    # ec3_node_queues_list: the Slurm partitions its workers serve (empty: the cluster's own)
    queues: tuple[str, ...] = ()
    # its workers' Slurm recipe is Orbis's and no recipe of the user's runs on them: the
    # monitor joins a new worker to Slurm as soon as it answers SSH (elastic/join.py)
    quick_join: bool = False


@dataclass
class ElasticCluster:
    """The elastic part of a template."""

    name: str  # the ElasticCluster node (TOSCA) or "ec3" (RADL)
    lrms: str  # "slurm"
    front: str  # the Compute the LRMS front-end runs on
    pools: list[WorkerPool] = field(default_factory=list)  # burst order: first with room wins
    knobs: Knobs = field(default_factory=Knobs)
    partition: str = "debug"
    position: Position | None = None

    def pool(self, compute: str) -> WorkerPool | None:
        return next((p for p in self.pools if p.compute == compute), None)

    def queues(self, pool: WorkerPool) -> tuple[str, ...]:
        """The partitions a pool's workers serve."""
        return pool.queues or (self.partition,)

    def partitions(self) -> list[str]:
        """Every partition of the cluster, the default (the first pool's first) first."""
        return list(dict.fromkeys(q for p in self.pools for q in self.queues(p))) or \
            [self.partition]  # fmt: skip
