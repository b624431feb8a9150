"""Kubernetes container applications (§2.4) and FaaS functions (§2.5)."""

from __future__ import annotations

import re
from typing import Any

from orbis.lang.tosca.context import COMPONENT, RUNTIME, STORAGE, Context, NodeTemplate
from orbis.lang.tosca.datatypes import size_to_bytes
from orbis.lang.tosca.functions import Resolver
from orbis.lang.tosca.nodes import HOSTED_ON
from orbis.lang.tosca.properties import node_capabilities, node_properties
from orbis.lang.yaml_positions import child_pos
from orbis.model.infrastructure import (
    ContainerApp,
    Function,
    PortSpec,
    Position,
    ServerlessFunction,
    Volume,
)

IMAGE_ARTIFACT = "tosca.artifacts.Deployment.Image.Container.Docker"
FILE_ARTIFACT = "tosca.artifacts.File"
_K8S_UNITS = re.compile(r"^\s*([0-9.]+)\s*([KMGT]i)\s*$")  # 512Mi, Kubernetes style


def memory_bytes(value: Any) -> int | None:
    """'512MB', '1 GiB' or Kubernetes' '512Mi' → bytes."""
    if not isinstance(value, str):
        return None
    match = _K8S_UNITS.match(value)
    return size_to_bytes(f"{match.group(1)} {match.group(2)}B" if match else value)


def _hosted_on(ctx: Context, node: NodeTemplate) -> NodeTemplate | None:
    for req in node.requirements:
        if ctx.is_relationship(req.relationship, HOSTED_ON):
            return ctx.nodes[req.target]
    return None


def _artifacts(
    ctx: Context, node: NodeTemplate
) -> list[tuple[str, dict[str, Any], Position | None]]:
    given = node.raw.get("artifacts")
    out: list[tuple[str, dict[str, Any], Position | None]] = []
    for name, spec in (given or {}).items() if isinstance(given, dict) else ():
        spec = {"file": spec} if isinstance(spec, str) else spec
        if isinstance(spec, dict):
            out.append((str(name), spec, child_pos(given, name, node.position) or node.position))
    return out


def _is(ctx: Context, artifact_type: Any, base: str) -> bool:
    return isinstance(artifact_type, str) and ctx.registry.derives(
        "artifact_types", artifact_type, base
    )


def _image(ctx: Context, spec: dict[str, Any], pos: Position | None) -> str | None:
    file = spec.get("file")
    if not isinstance(file, str) or not file:
        ctx.problems.add(pos, "the image artifact has no 'file' (the image name)")
        return None
    repo = spec.get("repository")
    if repo is not None:
        if repo not in ctx.repositories:
            ctx.problems.add(pos, f"artifact names unknown repository '{repo}'")
            return None
        registry = re.sub(r"^[a-z]+://", "", ctx.repositories[repo]).rstrip("/")
        file = f"{registry}/{file}"
    return file if "://" in file else f"docker://{file}"


def _port_specs(ctx: Context, value: Any, pos: Position | None, what: str) -> list[PortSpec]:
    out: list[PortSpec] = []
    for spec in value if isinstance(value, list) else []:
        source = spec.get("source") if isinstance(spec, dict) else None
        if isinstance(source, bool) or not isinstance(source, int):
            ctx.problems.add(pos, f"{what}: each port needs a numeric 'source'")
            continue
        target = spec.get("target")
        target = None if target in (None, source) else target
        out.append(
            PortSpec(
                source, str(spec.get("protocol") or "tcp").lower(), target, spec.get("remote_cidr")
            )
        )
    return out


def map_container(
    ctx: Context, resolver: Resolver, node: NodeTemplate, props: dict[str, Any], namespace: Any
) -> ContainerApp | None:
    image, files = None, []
    for name, spec, pos in _artifacts(ctx, node):
        if _is(ctx, spec.get("type"), IMAGE_ARTIFACT):
            image = _image(ctx, spec, pos)
        elif _is(ctx, spec.get("type"), FILE_ARTIFACT) and spec.get("deploy_path"):
            entry: dict[str, Any] = {"name": name, "path": str(spec["deploy_path"])}
            content = (spec.get("properties") or {}).get("content")
            if content is not None:
                entry["content"] = str(content)
            else:
                entry["url"] = str(spec.get("file"))  # downloaded at deploy time (as IM)
            files.append(entry)
    if image is None:
        if not any(_is(ctx, s.get("type"), IMAGE_ARTIFACT) for _, s, _ in _artifacts(ctx, node)):
            ctx.problems.add(
                node.position,
                f"container '{node.name}' has no image artifact",
                f"artifacts: {{image: {{file: <image>, type: {IMAGE_ARTIFACT}}}}}",
            )
        return None
    env = props.get("environment") or {}
    command = props.get("command") or []
    app = ContainerApp(
        name=node.name,
        type=node.type,
        image=image,
        environment={str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {},
        command=[str(c) for c in command] if isinstance(command, list) else [str(command)],
        config_files=files,
        namespace=None if namespace is None else str(namespace),
        properties=props,
        position=node.position,
    )
    runtime = _hosted_on(ctx, node)
    if runtime is None or runtime.kind != RUNTIME:
        ctx.problems.warn(
            node.position,
            f"container '{node.name}' is not hosted on a "
            "tosca.nodes.Container.Runtime: no resources, volumes or ports",
        )
        return app
    host = node_capabilities(ctx, resolver, runtime, with_defaults=False).get("host", {})
    given = runtime.section("capabilities").get("host")
    host_props = given.get("properties") if isinstance(given, dict) else None
    cpus = host.get("num_cpus")
    app.num_cpus = (
        float(cpus) if isinstance(cpus, int | float) and not isinstance(cpus, bool) else None
    )
    app.num_gpus = host.get("num_gpus") if isinstance(host.get("num_gpus"), int) else None
    app.mem_size = memory_bytes(host.get("mem_size"))
    vol_pos = child_pos(host_props, "volumes", runtime.position)
    for item in host.get("volumes") or []:
        storage, _, path = str(item).partition(":")
        if storage not in ctx.nodes or ctx.nodes[storage].kind != STORAGE or not path:
            ctx.problems.add(
                vol_pos,
                f"volume '{item}' of '{runtime.name}' must be '<BlockStorage node>:<mount path>'",
            )
            continue
        app.volumes.append((storage, path))
        props = node_properties(ctx, resolver, ctx.nodes[storage])
        size, volume_id = props.get("size"), props.get("volume_id")
        app.storage[storage] = Volume(
            name=storage, size=size_to_bytes(size) if isinstance(size, str) else None,
            volume_id=str(volume_id) if isinstance(volume_id, str) and volume_id else None,
            type=props.get("type") if isinstance(props.get("type"), str) else None,
            mount_path=path, position=ctx.nodes[storage].position,
        )  # fmt: skip
    app.publish_ports = _port_specs(
        ctx,
        host.get("publish_ports"),
        child_pos(host_props, "publish_ports", vol_pos),
        "publish_ports",
    )
    app.expose_ports = _port_specs(
        ctx,
        host.get("expose_ports"),
        child_pos(host_props, "expose_ports", vol_pos),
        "expose_ports",
    )
    app.count = _count_0_1(ctx, resolver, runtime)
    return app


def _count_0_1(ctx: Context, resolver: Resolver, node: NodeTemplate) -> int:
    """IM deploys these once or not at all: scalable count 0 or 1."""
    scalable = node_capabilities(ctx, resolver, node, with_defaults=False).get("scalable", {})
    count = next((scalable[k] for k in ("count", "default_instances") if k in scalable), 1)
    if isinstance(count, Function):
        return 1
    if count not in (0, 1) or isinstance(count, bool):
        given = node.section("capabilities").get("scalable")
        props = given.get("properties") if isinstance(given, dict) else None
        ctx.problems.add(
            child_pos(props, "count", node.position),
            f"'{node.name}' can only have count 0 or 1, got {count!r}",
        )
        return 1
    return int(count)


def map_function(
    ctx: Context, resolver: Resolver, node: NodeTemplate, props: dict[str, Any]
) -> ServerlessFunction:
    host = _hosted_on(ctx, node)
    env = props.get("env_variables") or {}
    fn = ServerlessFunction(
        name=node.name,
        type=node.type,
        image=None if props.get("image") is None else str(props["image"]),
        script=None if props.get("script") is None else str(props["script"]),
        count=_count_0_1(ctx, resolver, node),
        memory=memory_bytes(props.get("memory")),
        cpu=float(props["cpu"]) if isinstance(props.get("cpu"), int | float) else None,
        environment={str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {},
        inputs=list(props.get("input") or []),
        outputs=list(props.get("output") or []),
        storage_providers=dict(props.get("storage_providers") or {}),
        host=host.name if host is not None and host.kind == COMPONENT else None,
        properties=props,
        position=node.position,
    )
    if props.get("memory") is not None and fn.memory is None:
        pos = child_pos(node.section("properties"), "memory", node.position)
        ctx.problems.add(
            pos,
            f"function '{node.name}': memory {props['memory']!r} is not a size",
            "e.g. 512MB or 1 GiB",
        )
    return fn
