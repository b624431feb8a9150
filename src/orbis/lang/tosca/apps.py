"""Kubernetes container applications (§2.4) and FaaS functions (§2.5)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

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
# an Ingress host: a lower-case DNS-1123 subdomain, optionally a wildcard (*.example.org)
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_INGRESS_HOST = re.compile(rf"^(\*\.)?{_DNS_LABEL}(\.{_DNS_LABEL})*$")


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
        if source is None and isinstance(spec, dict):
            source = spec.get("target")  # only the container's port: published as itself (IM)
        if isinstance(source, bool) or not isinstance(source, int):
            ctx.problems.add(pos, f"{what}: each port needs a numeric 'source' or 'target'")
            continue
        target = spec.get("target")
        target = None if target in (None, source) else target
        out.append(
            PortSpec(
                source, str(spec.get("protocol") or "tcp").lower(), target, spec.get("remote_cidr")
            )
        )
    return out


def _base64(text: str) -> bool:
    """Whether the text is strictly base64 (standard alphabet, padded; whitespace ignored)."""
    try:
        base64.b64decode(re.sub(r"\s+", "", text), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _config_file(
    ctx: Context, name: str, spec: dict[str, Any], pos: Position | None
) -> dict[str, Any]:
    """A `tosca.artifacts.File` with a deploy_path: {name, path, content|url, encoding?}.

    base64 rule (IM: "base64 content -> Secret"; the dialect has no marker of its own): a file is
    base64 only when its artifact says so with `properties: {encoding: base64}`; its content
    (given, or downloaded from `file`) must then be strict base64, and the file mounted is the
    decoded bytes, from a Secret. Content is never sniffed: short ordinary text such as
    `true` or `abcd1234` decodes as base64 too. Other files go, as text, in the ConfigMap."""
    props = spec.get("properties")
    props = props if isinstance(props, dict) else {}
    entry: dict[str, Any] = {"name": name, "path": str(spec["deploy_path"])}
    content = props.get("content")
    if content is not None:
        entry["content"] = str(content)
    else:
        entry["url"] = str(spec.get("file"))  # downloaded at deploy time (as IM)
    encoding = props.get("encoding")
    if encoding is not None:
        enc_pos = child_pos(props, "encoding", pos)
        if not isinstance(encoding, str) or encoding.lower() != "base64":
            ctx.problems.add(enc_pos, f"file '{name}': unknown encoding {encoding!r}",
                             "the only encoding is base64 (the file is then a Secret)")  # fmt: skip
        elif "content" in entry and not _base64(entry["content"]):
            ctx.problems.add(
                child_pos(props, "content", pos),
                f"file '{name}' says encoding base64 but its content is not base64",
            )
        else:
            entry["encoding"] = "base64"
    elif "content" in entry and len(entry["content"]) >= 16 and _base64(entry["content"]):
        ctx.problems.warn(
            pos,
            f"file '{name}' looks like base64 but is mounted as the text given (a ConfigMap); "
            "add 'encoding: base64' to its properties to mount the decoded bytes (a Secret)",
        )
    return entry


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ingress_url(ctx: Context, value: Any, raw: Any, pos: Position | None) -> str | None:
    """The first published port's `endpoint` URL (IM: the app's DNS name, its Ingress host) as
    `http(s)://<host><path>`; a bare host name means http. None when that port has none.
    `raw` is the list as written (for positions)."""
    specs = [s for s in value if isinstance(s, dict)] if isinstance(value, list) else []
    if any(s.get("endpoint") not in (None, "") for s in specs[1:]):
        ctx.problems.warn(pos, "publish_ports: only the first port's endpoint makes an Ingress")
    endpoint = specs[0].get("endpoint") if specs else None
    if endpoint is None or endpoint == "":
        return None
    first = raw[0] if isinstance(raw, list) and raw else None
    pos = child_pos(first, "endpoint", child_pos(raw, 0, pos))
    if not isinstance(endpoint, str):
        ctx.problems.add(pos, f"publish_ports: endpoint {endpoint!r} is not a URL",
                         "e.g. https://myapp.example.org/path")  # fmt: skip
        return None
    text = endpoint.strip()
    url = urlsplit(text if "://" in text else f"http://{text}")
    host = url.hostname or ""
    try:
        port = url.port
    except ValueError:
        port = -1
    why = (
        "its scheme must be http or https" if url.scheme not in ("http", "https")
        else "an Ingress host is a DNS name, not an IP address" if _is_ip(host)
        else f"'{host}' is not a DNS name" if not _INGRESS_HOST.match(host) or len(host) > 253
        else "an Ingress takes no port (it listens on 80/443)" if port is not None
        else "an Ingress takes no user, query or fragment"
        if url.username is not None or url.query or url.fragment
        else "an Ingress routes HTTP: the first published port must be TCP"
        if str(specs[0].get("protocol") or "tcp").lower() != "tcp"
        else None
    )  # fmt: skip
    if why:
        ctx.problems.add(pos, f"publish_ports: endpoint {endpoint!r}: {why}",
                         "e.g. https://myapp.example.org/path")  # fmt: skip
        return None
    return f"{url.scheme}://{host}{url.path or '/'}"


def map_container(
    ctx: Context, resolver: Resolver, node: NodeTemplate, props: dict[str, Any], namespace: Any
) -> ContainerApp | None:
    image, files = None, []
    for name, spec, pos in _artifacts(ctx, node):
        if _is(ctx, spec.get("type"), IMAGE_ARTIFACT):
            # IM's k8s templates name the image by an input: {file: {get_input: image}}
            spec = {**spec, "file": resolver.resolve(spec.get("file"), pos, node.name)}
            image = _image(ctx, spec, pos)
        elif _is(ctx, spec.get("type"), FILE_ARTIFACT) and spec.get("deploy_path"):
            files.append(_config_file(ctx, name, spec, pos))
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
    pub_pos = child_pos(host_props, "publish_ports", vol_pos)
    app.publish_ports = _port_specs(ctx, host.get("publish_ports"), pub_pos, "publish_ports")
    raw_ports = host_props.get("publish_ports") if isinstance(host_props, dict) else None
    app.ingress_url = _ingress_url(ctx, host.get("publish_ports"), raw_ports, pub_pos)
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
