"""What to do with an elastic cluster's workers now, and why. Pure: the queue, the workers and
the knobs in, decisions with a reason each out (tested with plain data).

Rules (docs/elastic.md): pending demand is placed first on free CPUs of workers that are up or
still booting, then on new workers, on the first pool (site) with room (the burst); no more than
`max_booting` workers boot at once; a booting worker is never judged before its boot deadline;
a worker with a job (ALLOCATED, MIXED, COMPLETING) is never powered off; an idle one is after
`idle_time`, keeping `warm_spares` and each pool's minimum; a worker that never joins is
re-created up to `join_retries` times per pool, then that pool is given up; a job no worker
could ever run is reported, not looped on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orbis.elastic.slurm import SlurmJob
from orbis.model.elastic import ElasticCluster, WorkerPool

DOWN_GRACE = 60.0  # seconds a joined worker may be DOWN/not responding before it is lost
FAILED_STATES = ("failed", "unconfigured")


@dataclass(frozen=True)
class Worker:
    vm_id: int
    pool: str  # the Compute it is an instance of
    name: str  # its host name, which is its Slurm node name
    state: str  # Orbis's node state (pending, running, configured, failed...)
    age: float  # seconds since it was asked for
    lrms: str | None = None  # Slurm's view: busy, idle, drain, down, off; None = not joined
    free_cpus: int = 0  # CPUs Slurm has not allocated (joined workers)
    idle_for: float = 0.0  # seconds Slurm has had it idle
    down_for: float = 0.0  # seconds Slurm has had it down or not responding


@dataclass(frozen=True)
class History:
    since_power_on: float | None = None  # seconds since the last power-on (None: never)
    since_power_off: float | None = None
    join_failures: dict[str, int] = field(default_factory=dict)  # per pool


@dataclass(frozen=True)
class Decision:
    action: str  # power_on | power_off | retry | give_up | forget | wait | unsatisfiable
    reason: str
    pool: str | None = None
    vm_id: int | None = None
    name: str | None = None  # Slurm node (forget) or worker name
    job: str | None = None


def decide(cluster: ElasticCluster, workers: list[Worker], jobs: list[SlurmJob],
           unknown_nodes: list[tuple[str, str]], history: History) -> list[Decision]:  # fmt: skip
    """The decisions for this cycle. `jobs`: pending jobs that more workers could help;
    `unknown_nodes`: (name, kind) of Slurm nodes that are no worker of ours."""
    knobs = cluster.knobs
    out: list[Decision] = []
    given_up = {p.compute for p in cluster.pools
                if history.join_failures.get(p.compute, 0) > knobs.join_retries}  # fmt: skip
    staying: list[Worker] = []
    for w in workers:
        judged = _judge(w, cluster, history)
        if judged:
            out.append(judged)
        else:
            staying.append(w)
    for name, kind in unknown_nodes:
        if kind != "busy":
            out.append(Decision("forget", f"Slurm lists {name} ({kind}) but no worker of this "
                                f"cluster is called so: forgetting it", name=name))  # fmt: skip
    partitions = cluster.partitions()
    jobs = [j for j in jobs if _in_partition(j, partitions)]
    booting = [w for w in staying if w.lrms is None]
    # free CPU slots: joined workers that take jobs, and booting ones (they will); a slot is
    # [free CPUs, VM id (negative: a new worker), pool]
    slots: list[list[Any]] = [[w.free_cpus, w.vm_id, w.pool] for w in staying
                              if w.lrms in ("idle", "busy")]  # fmt: skip
    slots += [[_pool(cluster, w.pool).cpus, w.vm_id, w.pool] for w in booting]
    counts = {p.compute: sum(1 for w in staying if w.pool == p.compute) for p in cluster.pools}
    used: set[int] = set()
    new: list[str] = []  # pools of the workers to power on, in order
    new_slots: list[list[Any]] = []
    full_note: dict[str, str] = {}
    waiting_cpus = 0
    waiting_jobs = 0
    for job in sorted(jobs, key=lambda j: int(j.id) if j.id.isdigit() else 0):
        per_node = job.cpus_per_node
        # the node types that serve the job's partition (ec3_node_queues_list), in burst order
        serving = [p for p in cluster.pools if _serves(cluster, p, job, partitions)]
        fit_pools = [
            p
            for p in serving
            if p.cpus >= per_node
            and (not job.memory_mb or not p.memory_mb or p.memory_mb >= job.memory_mb)
        ]
        if not fit_pools:
            biggest = max((p.cpus for p in serving), default=0)
            where = "no worker" if serving == cluster.pools else \
                f"no worker of partition {job.partition or partitions[0]}"  # fmt: skip
            out.append(Decision("unsatisfiable", f"job {job.id} asks for {per_node} CPUs"
                                + (f" and {job.memory_mb} MB" if job.memory_mb else "")
                                + f" per node; {where} has more than {biggest} CPUs: it "
                                "cannot run on this cluster", job=job.id))  # fmt: skip
            continue
        fit_names = {p.compute for p in fit_pools}
        waiting_jobs += 1
        waiting_cpus += job.cpus
        for _ in range(job.nodes):
            slot = next((s for s in slots + new_slots
                         if s[0] >= per_node and s[2] in fit_names), None)  # fmt: skip
            if slot is not None:
                slot[0] -= per_node
                used.add(slot[1])
                continue
            pool = _room(fit_pools, counts, given_up, full_note)
            if pool is None:
                break
            counts[pool.compute] += 1
            new.append(pool.compute)
            new_slots.append([pool.cpus - per_node, -len(new), pool.compute])
    demand = f"{waiting_jobs} job{'s' if waiting_jobs != 1 else ''} pending need " \
             f"{waiting_cpus} CPU{'s' if waiting_cpus != 1 else ''}"  # fmt: skip
    reasons = [f"{demand}; powering on a worker on {pool}" for pool in new]
    # pool minimums, then warm spares beyond the demand
    for p in cluster.pools:
        while counts[p.compute] < p.min and p.compute not in given_up:
            counts[p.compute] += 1
            new.append(p.compute)
            reasons.append(f"{p.compute} has {counts[p.compute] - 1} workers, fewer than its "
                           f"min_instances {p.min}: powering one on")  # fmt: skip
    spare = [w for w in staying if w.vm_id not in used and w.lrms in ("idle", None)]
    spare_new = sum(1 for s in new_slots  # new workers nothing needs
                    if s[0] == _pool(cluster, s[2]).cpus)  # fmt: skip
    for _ in range(knobs.warm_spares - len(spare) - spare_new):
        pool = _room(cluster.pools, counts, given_up, full_note)
        if pool is None:
            break
        counts[pool.compute] += 1
        new.append(pool.compute)
        reasons.append(
            f"keeping {knobs.warm_spares} warm spare worker"
            f"{'s' if knobs.warm_spares != 1 else ''}: powering one on {pool.compute}"
        )
    out += _power_on(cluster, new, reasons, len(booting), history, full_note, waiting_jobs,
                     demand, bool(jobs))  # fmt: skip
    if not new:
        out += _power_off(cluster, staying, used, counts, history)
    return out


def _judge(w: Worker, cluster: ElasticCluster, history: History) -> Decision | None:
    """A worker that failed, never joined by its deadline, or that Slurm lost."""
    knobs = cluster.knobs
    if w.lrms is None:
        failed = w.state in FAILED_STATES
        if not failed and w.age <= knobs.boot_deadline:
            return None  # still booting: never judged before its deadline
        why = (f"{w.name} {w.state}" if failed else
               f"{w.name} did not join Slurm within {knobs.boot_deadline:.0f} s")  # fmt: skip
        attempt = history.join_failures.get(w.pool, 0) + 1
        if attempt <= knobs.join_retries:
            return Decision(
                "retry",
                f"{why} (failure {attempt} of {knobs.join_retries} "
                f"allowed on {w.pool}): re-creating it",
                w.pool,
                w.vm_id,
                w.name,
            )
        return Decision(
            "give_up",
            f"{why}; {knobs.join_retries} retries spent on {w.pool}: "
            f"removing it and powering on no more there",
            w.pool,
            w.vm_id,
            w.name,
        )
    if w.lrms == "down" and w.down_for >= DOWN_GRACE:
        return Decision("power_off", f"Slurm lost {w.name} (down for {w.down_for:.0f} s): "
                        "removing it", w.pool, w.vm_id, w.name)  # fmt: skip
    return None


def _room(pools: list[WorkerPool], counts: dict[str, int], given_up: set[str],
          notes: dict[str, str]) -> WorkerPool | None:  # fmt: skip
    for p in pools:
        if p.compute in given_up:
            notes[p.compute] = f"{p.compute} given up"
        elif counts[p.compute] >= p.max:
            notes[p.compute] = f"{p.compute} at max {p.max}"
        else:
            return p
    return None


def _power_on(cluster: ElasticCluster, new: list[str], reasons: list[str], booting: int,
              history: History, full: dict[str, str], waiting: int, demand: str,
              any_jobs: bool) -> list[Decision]:  # fmt: skip
    knobs = cluster.knobs
    out: list[Decision] = []
    if not new:
        if full and waiting:
            total = sum(p.max for p in cluster.pools)
            out.append(Decision("wait", f"{demand}; not powering on: max {total} reached ("
                                + ", ".join(full.values()) + ")"))  # fmt: skip
        return out
    cooling = history.since_power_on is not None and history.since_power_on < knobs.cooldown
    if cooling:
        return [Decision("wait", f"{demand}; not powering on: cooldown {knobs.cooldown:.0f} s "
                         f"(last power-on {history.since_power_on:.0f} s ago)")]  # fmt: skip
    budget = max(0, knobs.max_booting - booting)
    for pool, reason in list(zip(new, reasons, strict=True))[:budget]:
        before = [full[p.compute] for p in cluster.pools if p.compute != pool
                  and p.compute in full and cluster.pools.index(p) <
                  cluster.pools.index(_pool(cluster, pool))]  # fmt: skip
        out.append(Decision("power_on", reason + (f" ({', '.join(before)})" if before else ""),
                            pool))  # fmt: skip
    if len(new) > budget:
        out.append(
            Decision(
                "wait",
                f"{len(new) - budget} more worker"
                f"{'s' if len(new) - budget != 1 else ''} wanted; not powering on "
                f"yet: {booting + budget} booting, max_booting {knobs.max_booting}",
            )
        )
    return out


def _power_off(cluster: ElasticCluster, staying: list[Worker], used: set[int],
               counts: dict[str, int], history: History) -> list[Decision]:  # fmt: skip
    knobs = cluster.knobs
    idle = [w for w in staying if w.lrms == "idle" and w.vm_id not in used
            and w.free_cpus == _pool(cluster, w.pool).cpus]  # fmt: skip
    idle.sort(key=lambda w: -w.idle_for)  # the longest idle go first
    keep = knobs.warm_spares
    out: list[Decision] = []
    for w in idle[keep:] if keep else idle:
        if w.idle_for < knobs.idle_time:
            continue
        if counts[w.pool] <= _pool(cluster, w.pool).min:
            continue
        pool = _pool(cluster, w.pool)
        if pool.destroy_interval > 0:  # paid by the period: kept until the end of this one
            left = pool.destroy_interval - w.age % pool.destroy_interval
            if left > max(pool.destroy_safe, knobs.poll):
                out.append(Decision("wait", f"{w.name} idle {w.idle_for:.0f} s > "
                                    f"{knobs.idle_time:.0f} s; kept until the end of its paid "
                                    f"{pool.destroy_interval:.0f} s (ec3_destroy_interval): "
                                    f"{left:.0f} s left", w.pool, w.vm_id, w.name))  # fmt: skip
                continue
        off_ago = history.since_power_off
        if off_ago is not None and off_ago < knobs.cooldown:
            out.append(Decision("wait", f"{w.name} idle {w.idle_for:.0f} s; not powering off: "
                                f"cooldown {knobs.cooldown:.0f} s"))  # fmt: skip
            break
        counts[w.pool] -= 1
        how = "stopping it (ec3_reuse_nodes)" if pool.reuse else "powering off"
        out.append(
            Decision(
                "power_off",
                f"{w.name} idle {w.idle_for:.0f} s > {knobs.idle_time:.0f} s: {how}",
                w.pool,
                w.vm_id,
                w.name,
            )
        )
        if knobs.cooldown:
            break  # one at a time when a cooldown is asked for
    return out


def _pool(cluster: ElasticCluster, name: str) -> WorkerPool:
    found = cluster.pool(name)
    return found if found is not None else WorkerPool(name)


def _in_partition(job: SlurmJob, partitions: list[str]) -> bool:
    """A job for one of the cluster's partitions (none said: the default, the first)."""
    return not job.partition or any(p in partitions for p in job.partition.split(","))


def _serves(cluster: ElasticCluster, pool: WorkerPool, job: SlurmJob,
            partitions: list[str]) -> bool:  # fmt: skip
    """Whether a node type's workers serve the job's partition (any of them, if it names
    several; the default partition if it names none)."""
    wanted = job.partition.split(",") if job.partition else partitions[:1]
    return any(q in wanted for q in cluster.queues(pool))
