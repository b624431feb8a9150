"""Elastic clusters in RADL, EC3's way: systems with `ec3_max_instances` are worker pools the
monitor powers on and off (none is deployed at first unless a `deploy` line says so);
`ec3_if_fail` names the system to use when this one is full or fails (the hybrid burst); the
front-end is the system called `front`, else the first one deployed that is no pool.

A system with no `configure` of its own gets Orbis's Slurm recipe (role `orbis_slurm`), so an
EC3 template needs no CLUES or Slurm recipe (docs/elastic.md)."""

from __future__ import annotations

import re
from dataclasses import replace

from orbis.lang.errors import Problems, suggest
from orbis.lang.radl.ast import Document
from orbis.lang.radl.values import Merged
from orbis.lang.tosca.elastic import FRONT_PLAY, WORKER_PLAY
from orbis.model.elastic import (
    KNOB_NAMES,
    MAX_QUEUES,
    NO_LIMIT,
    PARTITION,
    ElasticCluster,
    Knobs,
    WorkerPool,
    knob_problem,
    queue_names,
)
from orbis.model.infrastructure import Component, Function, Operation, Template

SLURM_TYPE = "radl.configure.orbis_slurm"
# the policy knobs in EC3's style, on the front-end system (docs/elastic.md)
KNOB_FEATURES = {f"ec3_{name}": name for name in KNOB_NAMES}
MAX_PATTERN = 10_000  # names one bracket span may give (a typo must not make millions)


def read_elastic(doc: Document, systems: dict[str, Merged], template: Template,
                 problems: Problems) -> None:  # fmt: skip
    """Set template.elastic when any system is a worker node type (ec3_max_instances, or an
    ec3_node_type other than 'front'); problems go to `problems`."""
    pools = {sid: m for sid, m in systems.items() if "ec3_max_instances" in m.values
             or _node_type(m) not in (None, "front")}  # fmt: skip
    if not pools:
        return
    chain: dict[str, str] = {}
    for sid, merged in pools.items():
        value = merged.values.get("ec3_if_fail")
        if value is None or not str(value.plain() or ""):  # EC3 writes '' for "none"
            continue
        target = str(value.plain())
        if target not in pools:
            known = sorted(pools)
            problems.add(value.pos, f"ec3_if_fail of system '{sid}' names '{target}', which is "
                         "no system with ec3_max_instances", suggest(target, known))  # fmt: skip
            continue
        chain[sid] = target
    heads = [sid for sid in pools if sid not in chain.values()]
    order: list[str] = []
    for head in heads or list(pools)[:1]:
        step: str | None = head
        while step is not None and step not in order:
            order.append(step)
            step = chain.get(step)
    order += [p for p in pools if p not in order]  # a cycle: the rest in written order
    front = _front(systems, pools, template, problems)
    if front is None:
        return
    cluster = ElasticCluster("ec3", "slurm", front, knobs=_knobs(systems, front, pools, problems))
    for sid in order:
        merged = pools[sid]
        value = merged.values.get("ec3_max_instances")
        number = value.number() if value is not None else NO_LIMIT
        names = _pattern(merged, sid, problems)
        if value is not None and (number is None or int(number) < 0):
            problems.add(value.pos, f"ec3_max_instances of '{sid}' must be a number >= 0")
            continue
        compute = template.computes[sid]
        memory = (compute.mem_size or 0) // 2**20
        top = max(int(number or 0), compute.count)
        cluster.pools.append(WorkerPool(
            sid, 0, min(top, len(names)) if names else top, max(1, int(compute.num_cpus or 1)),
            memory * 3 // 4 if memory else 400, names=names,
            reuse=_flag(merged, "ec3_reuse_nodes", sid, problems),
            destroy_interval=_seconds(merged, "ec3_destroy_interval", sid, problems),
            destroy_safe=_seconds(merged, "ec3_destroy_safe", sid, problems),
            queues=_queues(merged, sid, problems),
        ))  # fmt: skip
    _recipes(template, cluster)
    template.elastic = cluster


def _node_type(merged: Merged) -> str | None:
    value = merged.values.get("ec3_node_type")
    return None if value is None else str(value.plain() or "").strip().lower()


def _front(systems: dict[str, Merged], pools: dict[str, Merged], template: Template,
           problems: Problems) -> str | None:  # fmt: skip
    """The front-end: the system whose ec3_node_type is 'front', else the system called
    `front`, else the first deployed system that is no worker type."""
    typed = [sid for sid, m in systems.items() if _node_type(m) == "front"]
    for extra in typed[1:]:
        problems.add(systems[extra].values["ec3_node_type"].pos, f"a second front-end: "
                     f"'{extra}' and '{typed[0]}' both have ec3_node_type = 'front'")  # fmt: skip
    if typed:
        return typed[0]
    deployed = [c.name for c in template.computes.values() if c.count and c.name not in pools]
    if "front" in template.computes and "front" not in pools:
        return "front"
    if deployed:
        return deployed[0]
    first = next(iter(pools.values()))
    where = first.values.get("ec3_max_instances") or first.values["ec3_node_type"]
    problems.add(where.pos, "an elastic cluster (ec3_max_instances) needs a front-end: a system "
                 "called 'front' or with ec3_node_type = 'front', or one deployed that has no "
                 "ec3_max_instances")  # fmt: skip
    return None


def _knobs(systems: dict[str, Merged], front: str, pools: dict[str, Merged],
           problems: Problems) -> Knobs:  # fmt: skip
    """The policy knobs: `ec3_idle_time = 600` and the like on the front-end system (they are
    the cluster's); on a worker system they are an error, to be moved."""
    knobs = Knobs()
    for sid, merged in systems.items():
        for feature, name in KNOB_FEATURES.items():
            value = merged.values.get(feature)
            if value is None:
                continue
            if sid != front:
                problems.add(value.pos, f"{feature} is a knob of the whole cluster: write it on "
                             f"the front-end system '{front}', not on '{sid}'")  # fmt: skip
                continue
            number = value.number() if value.kind == "num" else value.plain()
            problem = knob_problem(name, number)
            if problem or value.kind != "num":
                problems.add(value.pos, f"{feature} of '{sid}' "
                             f"{problem or 'must be a number'}")  # fmt: skip
                continue
            knobs = knobs.with_values({name: number})
    return knobs


def _queues(merged: Merged, sid: str, problems: Problems) -> tuple[str, ...]:
    """ec3_node_queues_list: the Slurm partitions the node type serves, 'a,b' or 'a b'."""
    value = merged.values.get("ec3_node_queues_list")
    if value is None:
        return ()
    names = queue_names(value.plain())
    if names is None:
        raw = value.plain()
        items = raw if isinstance(raw, list) else re.split(r"[\s,]+", str(raw or ""))
        bad = [i for i in items if i and not re.fullmatch(PARTITION, i)]
        problems.add(value.pos, f"ec3_node_queues_list of '{sid}' must name 1 to {MAX_QUEUES} "
                     "Slurm partitions (letters, digits, '_', '-', '.'), as 'short,long'"
                     + (f", not {bad[0]!r}" if bad else ""))  # fmt: skip
        return ()
    return names


def _pattern(merged: Merged, sid: str, problems: Problems) -> tuple[str, ...]:
    """The host names of ec3_node_pattern: `wn[1-3]`, `wn[1,2,5]`, `wn[1-2,7]x`, or a name."""
    value = merged.values.get("ec3_node_pattern")
    if value is None:
        return ()
    text = str(value.plain()).strip()
    found = re.fullmatch(r"([a-z0-9-]*)(?:\[([0-9,\- ]+)\])?([a-z0-9-]*)", text.lower())
    names: list[str] = []
    if found is not None and (found.group(1) or found.group(2)):
        head, spans, tail = found.groups()
        for span in (spans or "").split(","):
            low, _, high = span.strip().partition("-")
            if not low.isdigit() or (high and not high.strip().isdigit()):
                names = []
                break
            last = int(high) if high else int(low)
            if last - int(low) > MAX_PATTERN:
                names = []
                break
            names += [f"{head}{n}{tail}" for n in range(int(low), last + 1)]
        if not spans:
            names = [f"{head}{tail}"]
    if not names:
        problems.add(value.pos, f"ec3_node_pattern of '{sid}' must be a host name with numbers "
                     "in brackets, as 'wn[1-5]' or 'wn[1,2,3]'")  # fmt: skip
        return ()
    return tuple(dict.fromkeys(names))


def _flag(merged: Merged, name: str, sid: str, problems: Problems) -> bool:
    value = merged.values.get(name)
    if value is None:
        return False
    text = str(value.plain()).strip().lower()
    if text not in ("yes", "no", "true", "false", "1", "0"):
        problems.add(value.pos, f"{name} of '{sid}' must be 'yes' or 'no'")
        return False
    return text in ("yes", "true", "1")


def _seconds(merged: Merged, name: str, sid: str, problems: Problems) -> float:
    value = merged.values.get(name)
    if value is None:
        return 0.0
    number = value.number()
    if number is None or number < 0:
        problems.add(value.pos, f"{name} of '{sid}' must be a number of seconds >= 0")
        return 0.0
    return float(number)


def _recipes(template: Template, cluster: ElasticCluster) -> None:
    hosts = {c.host for c in template.components.values()}
    front_step = f"{cluster.front}_slurm"
    if cluster.front not in hosts:
        template.components[front_step] = Component(
            front_step, SLURM_TYPE, cluster.front,
            [Operation("configure", inline=FRONT_PLAY, inputs={
                "slurm_partition": cluster.partition, "slurm_partitions": cluster.partitions()},
                inherited=True)],
        )  # fmt: skip
    for i, pool in enumerate(cluster.pools):
        if pool.compute in hosts:
            continue  # the system's own configure sets Slurm up: Ansible joins it
        cluster.pools[i] = replace(pool, quick_join=True)
        name = f"{pool.compute}_slurm"
        template.components[name] = Component(
            name, SLURM_TYPE, pool.compute,
            [Operation("configure", inline=WORKER_PLAY, inherited=True, inputs={
                "slurm_front_ip": Function("get_attribute", (cluster.front, "private_address", 0)),
                "slurm_wn_cpus": pool.cpus, "slurm_wn_memory": pool.memory_mb,
                "slurm_partition": cluster.partition,
                "slurm_wn_queues": list(cluster.queues(pool))})],
            requirements=[("tosca.relationships.DependsOn", front_step)]
            if front_step in template.components else [],
        )  # fmt: skip
