"""A checked RADL document → the one model (`Template`); see docs/radl.md for the table."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from orbis.lang.errors import Problems
from orbis.lang.radl.ast import Configure, Document
from orbis.lang.radl.encoding import encode_merged, encode_value
from orbis.lang.radl.outports import parse_outports
from orbis.lang.radl.values import Merged, Value
from orbis.model.infrastructure import (
    Component,
    Compute,
    Credentials,
    Network,
    NetworkInterface,
    Operation,
    Template,
    Volume,
)

SYSTEM_TYPE = "radl.system"
REFERENCE_TYPE = "radl.system.reference"  # `system X` without ( ): an existing system
CONFIGURE_TYPE = "radl.configure"
_CRED = "disk.0.os.credentials."


class _Taker:
    """Pops the features a model field consumes; what is left becomes `features`."""

    def __init__(self, merged: Merged) -> None:
        self.values = dict(merged.values)
        self.extra: dict[str, Any] = {}

    def take(self, name: str) -> Value | None:
        return self.values.pop(name, None)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or value.kind not in ("str", "num"):
            return None
        self.values.pop(name)
        return value.string if value.kind == "str" else (value.text or str(value.number()))

    def number(self, name: str, keep_max: bool = True) -> int | float | None:
        """The minimum (IM's host requirements are minimums); an upper bound stays a feature."""
        value = self.values.get(name)
        if value is None or value.kind != "num":
            return None
        self.values.pop(name)
        if value.high is not None and keep_max:
            self.extra[f"{name}_max"] = value.high
        return value.low if value.low is not None or keep_max else value.high

    def yes(self, name: str) -> bool | None:
        text = self.text(name)
        return None if text is None else text.lower() == "yes"


def _tags(text: str | None) -> dict[str, str] | None:
    if text is None:
        return None
    pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
    if not all(len(p) == 2 for p in pairs):
        return None
    return {k.strip(): v.strip() for k, v in pairs}


def _interfaces(t: _Taker) -> list[NetworkInterface]:
    indices = sorted(
        {int(m.group(1)) for n in t.values if (m := re.match(r"net_interface\.(\d+)\.", n))}
    )
    out = []
    for i in indices:
        p = f"net_interface.{i}."
        connection = t.text(p + "connection")
        if connection is None:
            continue
        names = t.take(p + "additional_dns_names")
        out.append(
            NetworkInterface(
                connection,
                i,
                t.text(p + "ip"),
                t.text(p + "dns_name"),
                names.items if names else [],
                t.text(p + "additional_ip"),
            )
        )
    return out


def _volumes(t: _Taker) -> list[Volume]:
    indices = sorted(
        {
            int(m.group(1))
            for n in t.values
            if (m := re.match(r"disk\.(\d+)\.", n)) and m.group(1) != "0"
        }
    )
    out = []
    for i in indices:
        p = f"disk.{i}."
        size = t.number(p + "size", keep_max=False)  # the size of a disk to create: exact
        url = t.values.get(p + "image.url")
        volume_id = t.text(p + "image.url") if url is not None and url.kind == "str" else None
        out.append(
            Volume(
                f"disk.{i}",
                i,
                None if size is None else int(size),
                volume_id,
                t.text(p + "type"),
                t.text(p + "mount_path"),
                t.text(p + "device"),
                t.text(p + "fstype"),
            )
        )
    return out


def _applications(t: _Taker, compute: Compute) -> None:
    apps = t.values.get("disk.0.applications")
    if apps is None or apps.kind != "contains":
        return
    for name, entry in list(apps.entries.items()):
        if set(entry) != {"name"}:
            continue
        for prefix, target in (
            ("ansible.roles.", compute.galaxy_roles),
            ("ansible.collections.", compute.galaxy_collections),
        ):
            if name.startswith(prefix):
                target.append(name[len(prefix) :])
                del apps.entries[name]
    if not apps.entries:
        t.take("disk.0.applications")


def _credentials(t: _Taker) -> Credentials | None:
    if _CRED + "username" not in t.values:
        return None  # keys without a user stay features
    return Credentials(
        t.text(_CRED + "username") or "",
        t.text(_CRED + "password"),
        t.text(_CRED + "private_key"),
        t.text(_CRED + "public_key"),
    )


def map_system(name: str, merged: Merged, networks: dict[str, Network]) -> Compute:
    t = _Taker(merged)
    c = Compute(name, SYSTEM_TYPE, position=None)
    cpus = t.number("cpu.count")
    c.num_cpus = None if cpus is None else float(cpus)
    mem, disk, gpus = t.number("memory.size"), t.number("disk.0.size"), t.number("gpu.count")
    c.mem_size = None if mem is None else int(mem)
    c.disk_size = None if disk is None else int(disk)
    c.num_gpus = None if gpus is None else int(gpus)
    url = t.values.get("disk.0.image.url")
    if url is not None and url.kind == "str":
        c.image = t.text("disk.0.image.url")
    elif url is not None and url.kind == "list" and url.items:
        c.image = url.items[0]  # IM picks the one matching the credentials; all stay features
    c.os_type, c.os_distribution = t.text("disk.0.os.name"), t.text("disk.0.os.flavour")
    c.os_version = t.text("disk.0.os.version")
    c.instance_name, c.instance_type = t.text("instance_name"), t.text("instance_type")
    c.cpu_arch, c.gpu_vendor, c.gpu_model = (
        t.text("cpu.arch"),
        t.text("gpu.vendor"),
        t.text("gpu.model"),
    )
    c.spot, c.availability_zone = t.yes("spot"), t.text("availability_zone")
    tags = _tags(t.values["instance_tags"].string) if "instance_tags" in t.values else None
    if tags is not None:
        c.tags = tags
        t.take("instance_tags")
    c.credentials = _credentials(t)
    c.interfaces, c.volumes = _interfaces(t), _volumes(t)
    _applications(t, c)
    _endpoint(c, networks)
    c.features = {**encode_merged(Merged(t.values, merged.softs)), **t.extra}
    return c


def _endpoint(c: Compute, networks: dict[str, Network]) -> None:
    """IM's TOSCA endpoint, seen from RADL: public when on an outbound network (docs/radl.md)."""
    nets = [networks[i.network] for i in c.interfaces if i.network in networks]
    public = [n for n in nets if n.public]
    c.public = bool(public)
    if public:
        c.network_name = f"{public[0].provider_id}.PUBLIC" if public[0].provider_id else "PUBLIC"
    else:
        private = [n.provider_id for n in nets if n.provider_id]
        c.network_name = private[0] if private else "PRIVATE"
    with_ports = [n for n in public or nets if n.outports]
    c.ports = list(with_ports[0].outports) if with_ports else []


def map_network(name: str, merged: Merged) -> Network:
    t = _Taker(merged)
    n = Network(name, public=bool(t.yes("outbound")), provider_id=t.text("provider_id"))
    n.cidr, n.create, n.router = t.text("cidr"), bool(t.yes("create")), t.text("router")
    n.sg_name, n.proxy_host, n.proxy_key = (
        t.text("sg_name"),
        t.text("proxy_host"),
        t.text("proxy_key"),
    )
    outports = t.text("outports")
    n.outports = parse_outports(outports)[0] if outports else []
    n.properties = encode_merged(Merged(t.values, merged.softs))
    return n


def plain_section(merged: Merged) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for value in merged.values.values():
        encode_value(value, out)
    return out


def components(
    doc: Document, template: Template, configures: dict[str, Configure], problems: Problems
) -> set[str]:
    """Components for the (system, configure) pairs that run; returns the configures used."""
    pairs: dict[tuple[str, str], tuple[int | None, str | None]] = {}
    if doc.contextualizes:
        for ctx in doc.contextualizes:
            for item in ctx.items:  # a repeated pair replaces the earlier one (IM)
                pairs[(item.system, item.configure)] = (item.step or 0, item.tool)
    else:  # IM: every configure runs on the systems of the same name, all together
        pairs = {(c, c): (None, None) for c in configures
                 if c in template.computes or c in template.functions}  # fmt: skip
    for system, name in [p for p in pairs if p[0] in template.functions]:
        pairs.pop((system, name))  # no machine to configure (radl/functions.py)
        where = configures[name].pos if name in configures else None
        problems.warn(where, f"configure '{name}' is not run on system '{system}': it is a "
                      "function")  # fmt: skip
    uses = Counter(name for _, name in pairs)
    used_names = set(uses)
    for (system, name), (step, tool) in pairs.items():
        configure = configures.get(name)
        if configure is None:
            continue
        unique = uses[name] == 1 and name not in template.computes
        key = name if unique and name not in template.components else f"{name}@{system}"
        ops = [] if configure.recipe is None else [recipe_operation(configure, tool)]
        if tool == "cloud_init":
            problems.warn(
                configure.pos,
                f"configure '{name}' is cloud-init: cloud VMs boot with it as user data; "
                "containers of the local back-end ignore it",
            )
        props: dict[str, Any] = {"configure": name}
        if tool:
            props["ctxt_tool"] = tool
        if configure.reference:
            props["reference"] = True
        template.components[key] = Component(
            key, CONFIGURE_TYPE, system, ops, properties=props, step=step, position=configure.pos
        )
    return used_names


def strip_recipe(recipe: str) -> str:
    """The playbook text: IM's recipe starts with the rest of the @begin line (a newline)."""
    return recipe[1:] if recipe.startswith("\n") else recipe


# What the writer emits for a playbook given by path or URL (docs/radl.md), read back as such.
IMPORT = re.compile(r'(?:---\n)?- import_playbook: ("(?:[^"\\\n]|\\.)*")\n(?:  vars: (\{.*\})\n)?')


def recipe_operation(configure: Configure, tool: str | None) -> Operation:
    name = "cloud_init" if tool == "cloud_init" else "configure"
    text = strip_recipe(configure.recipe or "")
    m = IMPORT.fullmatch(text)
    if m and tool != "cloud_init":
        try:
            inputs = json.loads(m.group(2)) if m.group(2) else {}
            return Operation(
                name,
                implementation=json.loads(m.group(1)),
                inputs=inputs,
                position=configure.recipe_pos,
            )
        except ValueError:
            pass  # not what the writer emits: an ordinary recipe
    return Operation(name, inline=text, position=configure.recipe_pos)
