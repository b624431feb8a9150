"""Load a TOSCA template (IM dialect subset) into the language-independent `model.Template`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orbis.lang.errors import Problem, Problems, TemplateError, suggest
from orbis.lang.sources import SERVER, Sources
from orbis.lang.tosca.apps import map_container, map_function
from orbis.lang.tosca.compute import ComputeMapper, is_public, map_compute
from orbis.lang.tosca.context import (
    ANSIBLE_HOST,
    COMPONENT,
    COMPUTE,
    CONTAINER,
    FUNCTION,
    NETWORK,
    STORAGE,
    Context,
    NodeTemplate,
)
from orbis.lang.tosca.elastic import read_elastic
from orbis.lang.tosca.filters import apply_node_filters, warn_ignored
from orbis.lang.tosca.functions import Resolver
from orbis.lang.tosca.imports import ImportReader, read_repositories
from orbis.lang.tosca.inputs import load_inputs
from orbis.lang.tosca.networks import build_networks, map_network
from orbis.lang.tosca.nodes import read_nodes
from orbis.lang.tosca.operations import node_artifacts, node_operations
from orbis.lang.tosca.policies import read_groups, read_policies
from orbis.lang.tosca.properties import node_capabilities, node_properties
from orbis.lang.tosca.registry import build_registry, type_set_from
from orbis.lang.tosca.relationships import in_order, relationship_operations
from orbis.lang.tosca.storage import attach_volumes
from orbis.lang.tosca.template_file import expand_template_file
from orbis.lang.yaml_positions import PMap, child_pos, duplicate_warnings, load_yaml, plain
from orbis.model.infrastructure import (
    Artifact,
    Component,
    Compute,
    Output,
    Position,
    Template,
)
from orbis.overlay.topology import read_overlay

GALAXY_ROLE = "tosca.artifacts.AnsibleGalaxy.role"
GALAXY_COLLECTION = "tosca.artifacts.AnsibleGalaxy.collection"

VERSIONS = tuple(f"tosca_simple_yaml_1_{minor}" for minor in range(4))
# tosca-parser's extension profiles, which IM's parser accepts too; their own node types
# (tosca.nodes.nfv.*, tosca.nodes.mec.*) are not shipped
PROFILES = ("tosca_simple_profile_for_nfv_1_0_0", "tosca_simple_profile_for_mec_1_0_0")
TOP_LEVEL = (
    "tosca_definitions_version", "tosca_default_namespace", "template_name", "template_author",
    "template_version", "description", "metadata", "dsl_definitions", "imports", "repositories",
    "data_types", "node_types", "relationship_types", "capability_types", "artifact_types",
    "interface_types", "policy_types", "group_types", "topology_template",
)  # fmt: skip
TOPOLOGY = (
    "description", "inputs", "node_templates", "relationship_templates", "outputs", "groups",
    "policies", "substitution_mappings", "workflows",
)  # fmt: skip


def read_text(path: str | Path, text: str | None) -> str:
    if text is not None:
        return text
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise TemplateError([Problem(None, f"cannot read template {path}: {reason}")]) from None


def load(
    path: str | Path,
    inputs: dict[str, Any] | None = None,
    text: str | None = None,
    sources: Sources = SERVER,
) -> Template:
    """Parse, validate and map a TOSCA template. `text` overrides reading `path` (which is
    then only used in messages and, when `sources` allows local files, to resolve relative
    files). Raises TemplateError."""
    file = str(path)
    doc = load_yaml(read_text(path, text), file)
    return load_document(doc, file, inputs or {}, sources)


def _check_header(doc: PMap, problems: Problems) -> None:
    version = doc.get("tosca_definitions_version")
    if version is None:
        problems.add(doc.pos, "missing tosca_definitions_version", f"add e.g. '{VERSIONS[0]}'")
    elif version in PROFILES:
        problems.warn(doc.value_pos("tosca_definitions_version"), f"'{version}' is read as "
                      "the simple profile: the profile's own types are not shipped with "
                      "Orbis")  # fmt: skip
    elif version not in VERSIONS:
        hint = f"use one of {', '.join(VERSIONS)}"
        problems.add(
            doc.value_pos("tosca_definitions_version"),
            f"unknown tosca_definitions_version '{version}'",
            hint,
        )
    for key in doc:
        if key not in TOP_LEVEL:
            problems.add(
                doc.key_pos(key), f"unknown top-level key '{key}'", suggest(str(key), TOP_LEVEL)
            )


def load_document(
    doc: Any, file: str, overrides: dict[str, Any], sources: Sources = SERVER
) -> Template:
    """Load an already parsed (position-aware) TOSCA document; `sources` says whether files
    of this machine may be read (the CLI) or not (the server: orbis.lang.sources)."""
    if not isinstance(doc, PMap):
        raise TemplateError(
            [Problem(Position(file, 1, 1), "a TOSCA template must be a YAML mapping")]
        )
    problems = Problems()
    for repeated in duplicate_warnings(doc):
        problems.warn(repeated.position, repeated.message)
    doc = expand_template_file(doc, file, problems, sources)
    _check_header(doc, problems)
    base_dir = Path(file).resolve().parent
    repositories = read_repositories(doc, problems)
    imports = ImportReader(problems, repositories, sources)
    imports.read(doc, base_dir)
    own_types = type_set_from(doc)  # types declared in the template itself
    registry = build_registry(
        imports.shipped, [*imports.local, *([own_types] if own_types else [])]
    )
    ctx = Context(file, base_dir, problems, registry, repositories, sources=sources)
    topology = doc.get("topology_template")
    if not isinstance(topology, PMap):
        problems.add(doc.value_pos("topology_template") if topology is not None else doc.pos,
                     "the template needs a 'topology_template' mapping")  # fmt: skip
        raise TemplateError(problems.problems)
    for key in topology:
        if key not in TOPOLOGY:
            hint = suggest(str(key), TOPOLOGY)
            problems.add(topology.key_pos(key), f"unknown key '{key}' in topology_template", hint)
    rel_templates = topology.get("relationship_templates")
    ctx.relationship_templates = dict(rel_templates) if isinstance(rel_templates, dict) else {}
    load_inputs(ctx, topology.get("inputs"), overrides)
    read_nodes(ctx, topology.get("node_templates", PMap(topology.pos)))
    warn_ignored(ctx, topology)
    template = Template(
        source_file=file,
        version=str(doc.get("tosca_definitions_version", "")),
        description=str(doc.get("description") or topology.get("description") or ""),
        metadata=plain(doc.get("metadata")) if isinstance(doc.get("metadata"), dict) else {},
        inputs=dict(ctx.inputs),
    )
    _metadata(template)
    resolver = Resolver(ctx)
    for node in ctx.nodes.values():
        _map_node(ctx, resolver, node, template)
    _host_endpoints(ctx, resolver, template)
    build_networks(ctx, template)
    used = attach_volumes(ctx, resolver, template)
    used |= {s for app in template.containers.values() for s, _ in app.volumes}
    for node in ctx.nodes.values():
        if node.kind == STORAGE and node.name not in used:
            ctx.problems.warn(node.position, f"block storage '{node.name}' is not attached to "
                              "any Compute or container: ignored")  # fmt: skip
    read_elastic(ctx, resolver, template)  # before _galaxy: it drops CLUES's roles
    _galaxy(ctx, template)
    read_groups(ctx, topology.get("groups"), template)
    read_policies(ctx, resolver, topology.get("policies"), template)
    _outputs(ctx, resolver, topology.get("outputs"), template)
    read_overlay(template, problems)  # after policies: their cloud_id says a node's site
    problems.check()
    template.warnings = list(problems.warnings)
    return template


def _metadata(template: Template) -> None:
    """IM reports the basename of `icon` as the template name when there is none."""
    icon = template.metadata.get("icon")
    if "template_name" not in template.metadata and isinstance(icon, str) and icon:
        template.metadata["template_name"] = Path(icon.rsplit("/", 1)[-1]).stem


def _map_node(ctx: Context, resolver: Resolver, node: NodeTemplate, template: Template) -> None:
    properties = node_properties(ctx, resolver, node)
    caps = node_capabilities(ctx, resolver, node, with_defaults=node.kind == COMPUTE)
    if node.kind == NETWORK:
        network = map_network(ctx, node, properties)
        if network is not None:
            template.networks[node.name] = network
        return
    if node.kind == CONTAINER:
        namespace = template.metadata.get("namespace")
        app = map_container(ctx, resolver, node, properties, namespace)
        if app is not None:
            template.containers[node.name] = app
        return
    if node.kind == FUNCTION:
        template.functions[node.name] = map_function(ctx, resolver, node, properties)
        return
    if node.kind == ANSIBLE_HOST:
        _ansible_host(ctx, node, properties, template)
        return
    host = ctx.hosts.get(node.name)
    if node.kind not in (COMPUTE, COMPONENT) or host is None:
        return  # ports/storage are consumed by their Compute; runtimes by their apps
    requirements = [(r.relationship, r.target) for r in node.requirements]
    operations = in_order(
        [*node_operations(ctx, resolver, node), *relationship_operations(ctx, resolver, node)]
    )
    artifacts = node_artifacts(ctx, node)
    if node.kind == COMPUTE:
        apply_node_filters(ctx, node, caps)
        compute = map_compute(ctx, node, caps, properties)
        compute.operations, compute.requirements, compute.artifacts = (
            operations,
            requirements,
            artifacts,
        )
        template.computes[node.name] = compute
    else:
        template.components[node.name] = Component(
            node.name,
            node.type,
            host,
            operations,
            requirements,
            properties,
            artifacts,
            position=node.position,
        )


def _ansible_host(
    ctx: Context, node: NodeTemplate, props: dict[str, Any], template: Template
) -> None:
    """tosca.nodes.im.AnsibleHost: contextualize from this host (IM keeps only one)."""
    if "ansible_host" in template.metadata:
        ctx.problems.warn(node.position, f"second AnsibleHost '{node.name}' ignored (as IM)")
        return
    given = props.get("credential")
    cred: dict[str, Any] = given if isinstance(given, dict) else {}
    kind = str(cred.get("token_type") or "password")
    template.metadata["ansible_host"] = {
        "node": node.name,
        "host": props.get("host"),
        "user": cred.get("user"),
        kind: cred.get("token"),
    }


def _galaxy(ctx: Context, template: Template) -> None:
    """Galaxy roles/collections of every node on a Compute are installed on that Compute."""
    owners: list[tuple[str, list[Artifact]]] = [
        *((c.name, c.artifacts) for c in template.computes.values()),
        *((c.host, c.artifacts) for c in template.components.values()),
    ]
    for host, artifacts in owners:
        compute = template.computes[host]
        for artifact in artifacts:
            if ctx.registry.derives("artifact_types", artifact.type, GALAXY_ROLE):
                wanted = compute.galaxy_roles
            elif ctx.registry.derives("artifact_types", artifact.type, GALAXY_COLLECTION):
                wanted = compute.galaxy_collections
            else:
                continue
            if artifact.file not in wanted:
                wanted.append(artifact.file)


def _host_endpoints(ctx: Context, resolver: Resolver, template: Template) -> None:
    """Endpoints a hosted component sets (PUBLIC network, ports) apply to its Compute (as IM)."""
    for comp in template.components.values():
        compute: Compute = template.computes[comp.host]
        node = ctx.nodes[comp.name]
        for cap, values in node_capabilities(ctx, resolver, node, with_defaults=False).items():
            cap_type = ctx.registry.merged("node_types", node.type, "capabilities").get(cap)
            cap_type = cap_type.get("type") if isinstance(cap_type, dict) else cap_type
            if not ctx.registry.derives(
                "capability_types", str(cap_type), "tosca.capabilities.Endpoint"
            ):
                continue
            given = node.section("capabilities").get(cap) or {}
            given = given.get("properties") if isinstance(given, dict) else None
            if (
                isinstance(given, dict)
                and "network_name" in given
                and is_public(values.get("network_name"))
            ):
                compute.public = True
            if isinstance(given, dict) and ("ports" in given or "port" in given):
                mapper = ComputeMapper(ctx, node, {"endpoint": values})
                compute.ports.extend(p for p in mapper.ports() if p not in compute.ports)


def _outputs(ctx: Context, resolver: Resolver, section: Any, template: Template) -> None:
    if section is None:
        return
    if not isinstance(section, PMap):
        ctx.problems.add(None, "'outputs' must be a mapping")
        return
    for name, spec in section.items():
        pos = section.key_pos(name)
        if not isinstance(spec, dict) or "value" not in spec:
            ctx.problems.add(pos, f"output '{name}' needs a 'value'")
            continue
        value = resolver.resolve(spec["value"], child_pos(spec, "value", pos), None)
        description = str(spec.get("description") or "")
        template.outputs[str(name)] = Output(str(name), value, description, pos)
