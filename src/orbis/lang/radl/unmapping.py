"""The model → a RADL `Document` (the inverse of mapping.py), for a template from any language.

What IM's TOSCA→RADL does is followed where the model came from TOSCA: host numbers as `>=`,
an implicit `public_net` per public machine and one shared `private_net`, steps from levels.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from orbis.engine.plan import levels
from orbis.lang.limits import safe_load_bounded
from orbis.lang.radl.ast import (
    Configure,
    Contextualize,
    CtxItem,
    Deploy,
    Document,
    Feature,
    Section,
    Soft,
)
from orbis.lang.radl.encoding import decode
from orbis.lang.radl.functions import function_features
from orbis.lang.radl.mapping import CONFIGURE_TYPE, REFERENCE_TYPE, SYSTEM_TYPE
from orbis.lang.radl.outports import format_outports
from orbis.lang.radl.units import format_size
from orbis.model.infrastructure import Component, Compute, Network, Operation, Template

LIFECYCLE = ("create", "configure", "start", "cloud_init")


def _eq(name: str, value: Any) -> Feature:
    return Feature(name, "=", value)


def _min(name: str, value: float | int | None, size: bool = False) -> list[Feature]:
    if value is None:
        return []
    number = int(value) if float(value).is_integer() else value
    text = format_size(int(number)) if size and isinstance(number, int) else None
    return [Feature(name, ">=", number, text=text)]


def _opt(name: str, value: str | None) -> list[Feature]:
    return [] if value is None else [_eq(name, value)]


def _yes(name: str, value: bool | None) -> list[Feature]:
    return [] if value is None else [_eq(name, "yes" if value else "no")]


def _network(net: Network) -> list[Feature | Soft]:
    out: list[Feature | Soft] = []
    if net.public:
        out.append(_eq("outbound", "yes"))
    if net.outports:
        out.append(_eq("outports", format_outports(net.outports)))
    out += _opt("provider_id", net.provider_id) + _yes("create", net.create or None)
    for name in ("cidr", "router", "sg_name", "proxy_host", "proxy_key", "gateway_ip"):
        out += _opt(name, getattr(net, name))
    return out + decode(net.properties)


def implicit_networks(template: Template) -> tuple[dict[str, Network], dict[str, list[str]]]:
    """IM's networks for machines without interfaces (a TOSCA model): (networks, per machine)."""
    nets: dict[str, Network] = {}
    links: dict[str, list[str]] = {}
    private = Network("private_net")
    for c in template.computes.values():
        if c.interfaces or c.type in (SYSTEM_TYPE, REFERENCE_TYPE):  # RADL may have none
            continue
        names = []
        if c.public:
            count = sum(1 for n in nets.values() if n.public)
            name = f"public_net_{count}" if count else "public_net"
            nets[name] = Network(name, public=True, outports=list(c.ports))
            names.append(name)
        else:
            private.outports += [p for p in c.ports if p not in private.outports]
        names.append(private.name)
        nets[private.name] = private
        links[c.name] = names
    return nets, links


def _system(c: Compute, links: list[str]) -> list[Feature | Soft]:
    f: list[Feature | Soft] = []
    f += _opt("instance_name", c.instance_name) + _opt("instance_type", c.instance_type)
    f += _opt("cpu.arch", c.cpu_arch) + _min("cpu.count", c.num_cpus)
    f += _min("memory.size", c.mem_size, size=True) + _min("gpu.count", c.num_gpus)
    f += _opt("gpu.vendor", c.gpu_vendor) + _opt("gpu.model", c.gpu_model)
    f += _yes("spot", c.spot) + _opt("availability_zone", c.availability_zone)
    if c.tags:
        f.append(_eq("instance_tags", ",".join(f"{k}={v}" for k, v in c.tags.items())))
    for iface in c.interfaces:
        p = f"net_interface.{iface.order}."
        f += [_eq(p + "connection", iface.network)] + _opt(p + "ip", iface.ip)
        f += _opt(p + "dns_name", iface.dns_name) + _opt(p + "additional_ip", iface.additional_ip)
        if iface.additional_dns_names:
            f.append(_eq(p + "additional_dns_names", list(iface.additional_dns_names)))
    for i, network in enumerate(links):
        f.append(_eq(f"net_interface.{i}.connection", network))
    if c.image is not None and "disk.0.image.url" not in c.features:
        f.append(_eq("disk.0.image.url", c.image))
    f += _opt("disk.0.os.name", c.os_type) + _opt("disk.0.os.flavour", c.os_distribution)
    f += _opt("disk.0.os.version", c.os_version) + _min("disk.0.size", c.disk_size, size=True)
    if c.credentials is not None:
        p = "disk.0.os.credentials."
        f += [_eq(p + "username", c.credentials.username)] + _opt(
            p + "password", c.credentials.password
        )
        f += _opt(p + "private_key", c.credentials.private_key)
        f += _opt(p + "public_key", c.credentials.public_key)
    for prefix, names in (
        ("ansible.roles.", c.galaxy_roles),
        ("ansible.collections.", c.galaxy_collections),
    ):
        for name in names:
            f.append(Feature("disk.0.applications", "contains", [_eq("name", prefix + name)]))
    for v in c.volumes:
        p = f"disk.{v.index}."
        if v.size is not None:
            f.append(Feature(p + "size", "=", v.size, text=format_size(v.size)))
        f += _opt(p + "image.url", v.volume_id) + _opt(p + "type", v.type)
        f += _opt(p + "mount_path", v.mount_path) + _opt(p + "device", v.device)
        f += _opt(p + "fstype", v.fs_type)
    return _collapse(f + decode(c.features))


def _collapse(features: list[Feature | Soft]) -> list[Feature | Soft]:
    """`x >= v` and `x <= v` → `x = v` (an exact requirement read back from the model)."""
    highs = {f.name: f for f in features if isinstance(f, Feature) and f.op == "<="}
    out: list[Feature | Soft] = []
    for f in features:
        high = highs.get(f.name) if isinstance(f, Feature) and f.op == ">=" else None
        if isinstance(f, Feature) and high is not None and high.value == f.value:
            out.append(Feature(f.name, "=", f.value, f.pos, f.unit, f.text))
            highs.pop(f.name)
            continue
        out.append(f)
    kept = {id(h) for h in highs.values()}
    return [f for f in out if not (isinstance(f, Feature) and f.op == "<=") or id(f) in kept]


def _import(op: Operation) -> dict[str, Any]:
    play: dict[str, Any] = {"import_playbook": op.implementation}
    if op.inputs:
        play["vars"] = {
            k: v if isinstance(v, str | int | float | bool) else str(v)
            for k, v in op.inputs.items()
        }
    return play


def recipe(operations: list[Operation]) -> str | None:
    """One recipe for a node's operations: the inline text as written when it is the only
    one, else the plays of every operation in lifecycle order (as IM merges a node's)."""
    ops = sorted(
        (o for o in operations if o.name in LIFECYCLE), key=lambda o: LIFECYCLE.index(o.name)
    )
    if not ops:
        return None
    if len(ops) == 1 and ops[0].inline is not None and not ops[0].inputs:
        text = ops[0].inline
        return "\n" + text + ("" if text.endswith("\n") else "\n")
    if len(ops) == 1 and ops[0].implementation is not None:
        play = _import(ops[0])
        line = f"---\n- import_playbook: {json.dumps(play['import_playbook'])}\n"
        if "vars" in play:
            line += f"  vars: {json.dumps(play['vars'], default=str)}\n"
        return "\n" + line
    plays: list[Any] = []
    for op in ops:
        if op.inline is None:
            plays.append(_import(op))
            continue
        loaded = safe_load_bounded(op.inline) or []
        for play in loaded if isinstance(loaded, list) else [loaded]:
            if isinstance(play, dict) and op.inputs:
                play["vars"] = {**(play.get("vars") or {}), **op.inputs}
            plays.append(play)
    return "\n---\n" + yaml.safe_dump(plays, sort_keys=False, default_flow_style=False)


def _steps(template: Template) -> list[tuple[Component, str]]:
    """Components to configure with their configure id; a TOSCA Compute's own operations
    become a configure `<compute>_conf` (IM's name for it)."""
    out = [(c, str(c.properties.get("configure", c.name))) for c in template.components.values()]
    for compute in template.computes.values():
        if compute.operations:
            conf = Component(
                f"{compute.name}_conf", CONFIGURE_TYPE, compute.name, list(compute.operations)
            )
            out.append((conf, conf.name))
    return out


def to_document(template: Template) -> Document:
    doc = Document(template.source_file)
    meta = template.metadata
    description = dict(meta.get("radl.description") or {})
    did = str(description.pop("id", "infrastructure"))
    if "infra_name" in meta:
        description = {"name": meta["infra_name"], **description}
    if description or "radl.description" in meta:
        doc.sections.append(_section("description", did, decode(description)))
    for aid, values in (meta.get("radl.ansible") or {}).items():
        doc.sections.append(_section("ansible", aid, decode(values)))
    refs: dict[str, list[str]] = meta.get("radl.references") or {}
    implicit, links = implicit_networks(template) if template.computes else ({}, {})
    for net in [*template.networks.values(), *implicit.values()]:
        doc.sections.append(_section("network", net.name, _network(net)))
    for kind in ("network", "system"):
        doc.sections += [
            _section(kind, r, None)
            for r in refs.get(kind, [])
            if kind != "system" or r not in template.computes
        ]
    for c in template.computes.values():
        features = None if c.type == REFERENCE_TYPE else _system(c, links.get(c.name, []))
        doc.sections.append(_section("system", c.name, features))
    # a standalone function is a system in IM (a hosted one is a step of its OSCAR node)
    functions = [f for f in template.functions.values() if f.host is None]
    for f in functions:
        doc.sections.append(_section("system", f.name, function_features(f)))
    _configures(template, doc, refs.get("configure", []))
    doc.deploys = [
        Deploy(c.name, c.count, c.cloud_id) for c in template.computes.values() if c.count > 0
    ] + [Deploy(f.name, f.count, f.cloud_id) for f in functions if f.count > 0]
    return doc


def _section(kind: str, sid: str, features: list[Feature | Soft] | None) -> Section:
    return Section(kind, sid, features)


def _configures(template: Template, doc: Document, references: list[str]) -> None:
    steps = _steps(template)
    written: set[str] = set()
    for comp, conf in steps:
        if conf in written:
            continue
        written.add(conf)
        reference = bool(comp.properties.get("reference"))
        doc.configures.append(
            Configure(conf, None if reference else recipe(comp.operations), reference)
        )
    for conf, text in (template.metadata.get("radl.configures") or {}).items():
        if conf not in written:
            doc.configures.append(Configure(conf, text))
    doc.configures += [Configure(r, None, True) for r in references if r not in written]
    options = dict(template.metadata.get("radl.contextualize_options") or {})
    block = Contextualize(template.ctxt_max_time, options)
    if template.contextualize is False:
        doc.contextualizes.append(block)
        return
    implicit = all(
        c.step is None and conf == c.host and "ctxt_tool" not in c.properties for c, conf in steps
    )
    from_radl = all(c.type == CONFIGURE_TYPE for c in template.components.values())
    if steps and implicit and from_radl and not options and block.max_time is None:
        return  # IM's rule gives the same: each configure on the system of its name
    level = levels(template)
    for comp, conf in steps:
        step = comp.step if comp.step is not None else level.get(comp.name, level.get(comp.host, 1))
        tool = comp.properties.get("ctxt_tool")
        block.items.append(CtxItem(comp.host, conf, None if tool else step, tool))
    if block.items or options or block.max_time is not None:
        doc.contextualizes.append(block)
