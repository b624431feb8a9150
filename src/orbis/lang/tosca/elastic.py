"""Elastic clusters in TOSCA: `tosca.nodes.indigo.ElasticCluster` (and EC3's) with its `lrms`
requirement (the batch system front-end) and `wn` requirements (worker nodes on scalable
Computes; several `wn` requirements are sites tried in order: the burst).

Orbis does CLUES's job itself, so the ElasticCluster's own recipes (CLUES, IM client) and
Galaxy roles are dropped, and the INDIGO Slurm front-end/worker recipes (Galaxy roles fetched
at deploy time) are replaced by Orbis's role `orbis_slurm` unless the template gives its own.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from orbis.lang.tosca.context import Context, NodeTemplate
from orbis.lang.tosca.functions import Resolver
from orbis.lang.yaml_positions import PMap
from orbis.model.elastic import (
    KNOB_NAMES,
    MAX_QUEUES,
    PARTITION,
    ElasticCluster,
    Knobs,
    WorkerPool,
    knob_problem,
    queue_names,
)
from orbis.model.infrastructure import Function, Operation, Position, Template

CLUSTER_TYPES = ("tosca.nodes.indigo.ElasticCluster", "tosca.nodes.ec3.ElasticCluster")
FRONTEND = "tosca.nodes.indigo.LRMS.FrontEnd"
SLURM_FRONTEND = "tosca.nodes.indigo.LRMS.FrontEnd.Slurm"
WORKER = "tosca.nodes.indigo.LRMS.WorkerNode"
SLURM_WORKER = "tosca.nodes.indigo.LRMS.WorkerNode.Slurm"
DEPENDS_ON = "tosca.relationships.DependsOn"
# CLUES's option names (EC3's config_options) → our knobs
CLUES_OPTIONS = {
    "IDLE_TIME": "idle_time", "MAX_BOOTING_NODES": "max_booting", "COOLDOWN_NODES": "cooldown",
    "EXTRA_NODES_FREE": "warm_spares", "MAX_WAIT_POWERON": "boot_deadline",
    "PERIOD_MONITORING_NODES": "poll",
}  # fmt: skip
FRONT_PLAY = """\
- name: Slurm front-end of an elastic cluster (Orbis)
  gather_facts: false
  become: true
  roles:
    - role: orbis_slurm
      slurm_role: elastic_front
"""
WORKER_PLAY = """\
- name: Slurm worker of an elastic cluster (Orbis)
  gather_facts: false
  become: true
  roles:
    - role: orbis_slurm
      slurm_role: elastic_wn
"""


def read_elastic(ctx: Context, resolver: Resolver, template: Template) -> None:
    """Set template.elastic from the ElasticCluster node, if any; problems go to ctx."""
    clusters = [
        n
        for n in ctx.nodes.values()
        if any(ctx.registry.derives("node_types", n.type, t) for t in CLUSTER_TYPES)
    ]
    if not clusters:
        return
    for extra in clusters[1:]:
        ctx.problems.add(extra.position, f"a second ElasticCluster '{extra.name}': one per "
                         f"template (the first is '{clusters[0].name}')")  # fmt: skip
    node = clusters[0]
    component = template.components.get(node.name)
    if component is not None:  # Orbis is the elasticity manager: no CLUES recipes or roles
        component.operations, component.artifacts = [], []
    lrms = [r for r in node.requirements if r.name == "lrms"]
    if not lrms:
        ctx.problems.add(
            node.position,
            f"ElasticCluster '{node.name}' has no 'lrms' requirement "
            "(the batch system's front-end)",
            "add '- lrms: <a tosca.nodes.indigo.LRMS.FrontEnd.Slurm node>'",
        )
        return
    front_node = ctx.nodes.get(lrms[0].target)
    if front_node is None or not ctx.registry.derives("node_types", front_node.type, FRONTEND):
        ctx.problems.add(lrms[0].position, f"'lrms' of '{node.name}' must be a "
                         f"{FRONTEND} node, not '{lrms[0].target}'")  # fmt: skip
        return
    if not ctx.registry.derives("node_types", front_node.type, SLURM_FRONTEND):
        # IM accepts it (CLUES manages other batch systems): deploy it, without elasticity
        ctx.problems.warn(lrms[0].position, f"ElasticCluster '{node.name}': workers are "
                          f"powered on and off for Slurm front-ends only, not {front_node.type}: "
                          "the cluster is deployed with its workers' count and does not grow "
                          "or shrink")  # fmt: skip
        return
    front = ctx.hosts.get(front_node.name)
    if front is None or front not in template.computes:
        ctx.problems.add(front_node.position, f"'{front_node.name}' is not hosted on a Compute")
        return
    cluster = ElasticCluster(node.name, "slurm", front, knobs=_knobs(ctx, resolver, node),
                             position=node.position)  # fmt: skip
    meta = node.section("metadata")
    partition = meta.get("partition")
    if partition is not None and not re.fullmatch(PARTITION, str(partition)):
        ctx.problems.add(meta.value_pos("partition") if isinstance(meta, PMap) else node.position,
                         f"partition of '{node.name}' must be a Slurm partition name (letters, "
                         "digits, '_', '-', '.'; up to 40)")  # fmt: skip
        partition = None
    cluster.partition = str(partition) if partition else "debug"
    front_ours = _own_recipe(template, front_node.name, FRONT_PLAY,
                             {"slurm_partition": cluster.partition})  # fmt: skip
    workers = [r for r in node.requirements if r.name == "wn"]
    if not workers:
        ctx.problems.add(node.position, f"ElasticCluster '{node.name}' has no 'wn' requirement "
                         "(the worker nodes it powers on and off)")  # fmt: skip
    for req in workers:
        pool = _pool(ctx, resolver, template, node, req.target, req.position)
        if pool is None:
            continue
        if template.computes[pool.compute] is template.computes[front]:
            ctx.problems.add(req.position, "the worker nodes cannot be the front-end's Compute")
            continue
        if cluster.pool(pool.compute):
            ctx.problems.add(req.position, f"'{pool.compute}' is named twice as 'wn'")
            continue
        ours = _own_recipe(template, req.target, WORKER_PLAY, {
            "slurm_front_ip": Function("get_attribute", (front, "private_address", 0)),
            "slurm_wn_cpus": pool.cpus, "slurm_wn_memory": pool.memory_mb,
            "slurm_partition": cluster.partition,
            "slurm_wn_queues": list(cluster.queues(pool))})  # fmt: skip
        users = [c.name for c in template.components.values() if c.name != req.target
                 and c.host == pool.compute and any(not op.inherited for op in c.operations)]
        users += [pool.compute] * any(not op.inherited  # the Compute's own recipes
                                      for op in template.computes[pool.compute].operations)
        cluster.pools.append(replace(pool, quick_join=ours and not users))
        worker = template.components.get(req.target)
        if worker is not None and (DEPENDS_ON, front_node.name) not in worker.requirements:
            worker.requirements.append((DEPENDS_ON, front_node.name))  # key and config first
    if front_ours:  # every partition the pools serve (their `queues`), the default first
        template.components[front_node.name].operations[-1].inputs["slurm_partitions"] = \
            cluster.partitions()  # fmt: skip
    template.elastic = cluster


def _pool(ctx: Context, resolver: Resolver, template: Template, cluster: NodeTemplate,
          target: str, pos: Position | None) -> WorkerPool | None:  # fmt: skip
    worker = ctx.nodes.get(target)
    if worker is None or not ctx.registry.derives("node_types", worker.type, WORKER):
        ctx.problems.add(pos, f"'wn' of '{cluster.name}' must be a {WORKER} node, not "
                         f"'{target}'")  # fmt: skip
        return None
    host = ctx.hosts.get(worker.name)
    compute = template.computes.get(host or "")
    if compute is None:
        ctx.problems.add(worker.position, f"'{worker.name}' is not hosted on a Compute")
        return None
    where = _scalable_pos(ctx, compute.name, "max_instances") or compute.position
    if compute.max_instances is None:
        ctx.problems.add(where, f"'{compute.name}' needs scalable max_instances: the most "
                         "workers the cluster may power on there")  # fmt: skip
        return None
    low = compute.min_instances or 0
    if compute.max_instances < low:
        ctx.problems.add(
            where,
            f"'{compute.name}': scalable max_instances "
            f"{compute.max_instances} is less than min_instances {low}",
        )
        return None
    cpus = max(1, int(compute.num_cpus or 1))
    memory = (compute.mem_size or 0) // 2**20
    return WorkerPool(compute.name, low, compute.max_instances, cpus,
                      memory * 3 // 4 if memory else 400,
                      queues=_queues(ctx, resolver, worker))  # fmt: skip


def _queues(ctx: Context, resolver: Resolver, worker: NodeTemplate) -> tuple[str, ...]:
    """The WorkerNode's `metadata.queues`: the Slurm partitions its workers serve (EC3's
    ec3_node_queues_list; the INDIGO/EC3 types have no property for it). Empty: the cluster's."""
    meta = worker.section("metadata")
    if "queues" not in meta:
        return ()
    pos = meta.value_pos("queues") if isinstance(meta, PMap) else worker.position
    names = queue_names(resolver.resolve(meta["queues"], pos, worker.name))
    if names is None:
        ctx.problems.add(pos or worker.position, f"queues of '{worker.name}' must name 1 to "
                         f"{MAX_QUEUES} Slurm partitions (letters, digits, '_', '-', '.'), as "
                         "[short, long] or 'short,long'")  # fmt: skip
        return ()
    return names


def _scalable_pos(ctx: Context, compute: str, prop: str) -> Position | None:
    node = ctx.nodes.get(compute)
    caps = node.section("capabilities") if node else {}
    scalable = caps.get("scalable")
    props = scalable.get("properties") if isinstance(scalable, dict) else None
    return props.value_pos(prop) if isinstance(props, PMap) and prop in props else None


def _knobs(ctx: Context, resolver: Resolver, node: NodeTemplate) -> Knobs:
    """Knobs from the node's `metadata` (our names, values may be get_input) and from EC3's
    `config_options` (CLUES's names)."""
    values: dict[str, tuple[Any, Position | None]] = {}
    raw = node.section("properties").get("config_options")
    for option in raw if isinstance(raw, list) else []:
        if isinstance(option, dict) and str(option.get("option")) in CLUES_OPTIONS:
            values[CLUES_OPTIONS[str(option["option"])]] = (option.get("value"), node.position)
    meta = node.section("metadata")
    for name, value in meta.items():
        if name not in KNOB_NAMES:
            continue
        pos = meta.value_pos(name) if isinstance(meta, PMap) else node.position
        values[name] = (resolver.resolve(value, pos, node.name), pos)
    knobs = Knobs()
    for name, (value, pos) in values.items():
        problem = knob_problem(name, value)
        if problem:
            ctx.problems.add(pos or node.position, f"elastic knob {name} of '{node.name}' "
                             f"{problem}")  # fmt: skip
            continue
        knobs = knobs.with_values({name: float(value)})
    return knobs


def _own_recipe(template: Template, name: str, play: str, inputs: dict[str, Any]) -> bool:
    """Orbis's Slurm recipe for a front-end/worker node whose configure is the INDIGO type's
    (a template's own configure is kept); whether Orbis's is used."""
    component = template.components.get(name)
    if component is None:
        return False
    own = [op for op in component.operations if not op.inherited]
    if any(op.name == "configure" for op in own):
        return False
    component.operations = [
        *own,
        Operation(
            "configure", inline=play, inputs=inputs, inherited=True, position=component.position
        ),
    ]
    component.artifacts = [a for a in component.artifacts if "AnsibleGalaxy" not in a.type]
    return True
