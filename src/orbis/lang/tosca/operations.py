"""Lifecycle operations (Standard create/configure/start) and artifacts of a node."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from orbis.lang.errors import suggest
from orbis.lang.sources import FILE_RULE, outside_bundle
from orbis.lang.tosca.context import Context, NodeTemplate
from orbis.lang.tosca.functions import Resolver
from orbis.lang.yaml_positions import PMap, child_pos, plain
from orbis.model.infrastructure import Artifact, Operation, Position

LIFECYCLE = ("create", "configure", "start")  # stop/delete are never run (as in IM)
STANDARD = ("Standard", "tosca.interfaces.node.lifecycle.Standard")
_KNOWN_OPS = (*LIFECYCLE, "stop", "delete")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_KEEP_AS_IS = ("tosca.artifacts.AnsibleGalaxy.", "tosca.artifacts.Deployment.Image")
# IM resolves a relative recipe it does not hold against grycap's tosca repository
# (tosca-dialect.md §2.6): the same fallback, fetched at deploy time by the guarded download.
IM_ARTIFACTS_URL = "https://raw.githubusercontent.com/grycap/tosca/main/artifacts/"


def _standard(interfaces: Any) -> Any:
    """The Standard interface of an interfaces map (short or full name)."""
    if not isinstance(interfaces, dict):
        return {}
    found = [interfaces[n] for n in STANDARD if isinstance(interfaces.get(n), dict)]
    if len(found) == 2:
        return {**found[1], **found[0]}
    return found[0] if found else {}


def _artifact_map(ctx: Context, node: NodeTemplate) -> dict[str, Any]:
    artifacts = dict(ctx.registry.merged("node_types", node.type, "artifacts"))
    given = node.raw.get("artifacts")
    if isinstance(given, dict):
        artifacts.update(given)
    return artifacts


def im_artifact_url(name: str) -> str:
    """The URL IM fetches a relative recipe or artifact name from when it does not hold it."""
    return IM_ARTIFACTS_URL + quote(PurePosixPath(name.replace("\\", "/")).as_posix())


def _fallback(ctx: Context, file: str, pos: Position | None, where: str) -> str:
    url = im_artifact_url(file)
    ctx.problems.warn(pos, f"'{file}' is not {where}: fetched from {url} at deploy time (as IM)")
    return url


def _locate(ctx: Context, file: str, pos: Position | None) -> str:
    """A URL stays a URL. On the user's machine (CLI) file:// becomes a path and a relative
    path is resolved from the template; on the server a name of the server's own files is a
    problem. A relative name that is neither next to the template (CLI; its playbooks are
    then sent inline) nor inline (server) is IM's: a file of grycap's tosca repository."""
    if ctx.sources.local_files:
        if file.startswith("file://"):
            return file[len("file://") :]
        if _URL.match(file):
            return file
        local = (ctx.base_dir / file).resolve()
        if local.exists() or outside_bundle(file):
            return str(local)
        return _fallback(ctx, file, pos, f"next to the template ({local})")
    if file.lower().startswith("file:"):
        ctx.problems.add(pos, f"'{file}' refused: file URLs name files of the server", FILE_RULE)
    elif not _URL.match(file):
        if why := outside_bundle(file):
            ctx.problems.add(pos, f"'{file}' refused: {why}", FILE_RULE)
        else:
            return _fallback(ctx, file, pos, "sent with the template")
    return file


def _artifact_file(ctx: Context, spec: Any, pos: Position | None) -> str | None:
    file = spec if isinstance(spec, str) else (spec or {}).get("file")
    if not isinstance(file, str):
        ctx.problems.add(pos, "artifact has no 'file'")
        return None
    repo = spec.get("repository") if isinstance(spec, dict) else None
    if repo is not None:
        if repo not in ctx.repositories:
            hint = suggest(str(repo), ctx.repositories)
            ctx.problems.add(pos, f"artifact names unknown repository '{repo}'", hint)
            return None
        return f"{ctx.repositories[repo]}/{file.lstrip('/')}"
    return file


def artifact_location(
    ctx: Context, node: NodeTemplate, name: str, pos: Position | None
) -> str | None:
    """The file/URL of a node's artifact by name (get_artifact); reported when unknown."""
    artifacts = _artifact_map(ctx, node)
    if name not in artifacts:
        hint = suggest(name, artifacts)
        ctx.problems.add(pos, f"get_artifact: node '{node.name}' has no artifact '{name}'", hint)
        return None
    file = _artifact_file(ctx, artifacts[name], pos)
    return None if file is None else _locate(ctx, file, pos)


def node_artifacts(ctx: Context, node: NodeTemplate) -> list[Artifact]:
    out = []
    given = node.raw.get("artifacts")
    for name, spec in _artifact_map(ctx, node).items():
        pos = child_pos(given, name, node.position) if isinstance(given, dict) else node.position
        file = _artifact_file(ctx, spec, pos)
        kind = str(spec.get("type", "")) if isinstance(spec, dict) else ""
        if file is None:
            continue
        if not kind.startswith(_KEEP_AS_IS) and "\n" not in file:
            file = _locate(ctx, file, pos)
        out.append(Artifact(str(name), kind, file))
    return out


def _implementation(
    ctx: Context, node: NodeTemplate, impl: Any, pos: Position | None
) -> tuple[str | None, str | None]:
    """(implementation path/URL, inline playbook text) of an operation."""
    if isinstance(impl, dict) and "primary" in impl:  # {primary: file, dependencies: [...]}
        impl = impl.get("primary")
    if isinstance(impl, dict) and "file" in impl:
        # an artifact definition in place ({file, type, repository}), as IM reads it (its
        # test templates write relationship operations this way)
        impl = _artifact_file(ctx, impl, pos)
    if impl is None:
        return None, None
    if not isinstance(impl, str):
        ctx.problems.add(pos, f"operation implementation must be a string, got {plain(impl)!r}")
        return None, None
    artifacts = _artifact_map(ctx, node)
    if impl in artifacts:
        resolved = _artifact_file(ctx, artifacts[impl], pos)
        if resolved is None:
            return None, None
        impl = resolved
    if "\n" in impl:  # a playbook written inline
        return None, impl
    located = _locate(ctx, impl, pos)
    if ctx.sources.local_files and not _URL.match(located):
        if not Path(located).exists():
            where = f"({located})"
            ctx.problems.warn(pos, f"node '{node.name}': implementation '{impl}' not found {where}")
        elif not located.endswith((".yml", ".yaml")):
            # only playbooks travel inline (cli/bundle.py); the server would read the name by
            # IM's rule, as a file of grycap's repository
            ctx.problems.warn(pos, f"node '{node.name}': '{impl}' is not a playbook, so it is not "
                              "sent with the template: give it by URL")  # fmt: skip
    return located, None


def _key_pos(mapping: Any, key: Any, default: Position | None) -> Position | None:
    return mapping.key_pos(key) if isinstance(mapping, PMap) else default


def _op_parts(definition: Any) -> tuple[Any, Any]:
    if isinstance(definition, dict):
        return definition.get("implementation"), definition.get("inputs")
    return definition, None


def operation_inputs(
    resolver: Resolver,
    self_node: str,
    pos: Position | None,
    *levels: list[Any],
    own_from: int = 0,
) -> dict[str, Any]:
    """Inputs of an operation, later levels (interface-wide, then per operation) winning.
    Levels from index `own_from` on are written in the template itself (those before come
    from types). IM refuses a template whose operation input is null ("input value ... not
    valid"): one the template writes is a problem; one a type supplies (type sets have such
    slips, e.g. `value:` written for `default:`) is a warning, so a type cannot make the
    user's template fail."""
    inputs: dict[str, Any] = {}
    origins: dict[str, tuple[int, Position | None]] = {}
    resolver.in_operation_inputs = True
    try:
        for index, level in enumerate(levels):
            for values in level:
                for key, value in (values or {}).items() if isinstance(values, dict) else ():
                    value_pos = child_pos(values, key, pos)
                    inputs[str(key)] = resolver.resolve(value, value_pos, self_node)
                    origins[str(key)] = (index, value_pos)
    finally:
        resolver.in_operation_inputs = False
    for key, value in inputs.items():
        if value is not None:
            continue
        index, where = origins[key]
        what = f"operation input '{key}' of node '{self_node}' is null"
        if index >= own_from:
            resolver.ctx.problems.add(
                where, what, "IM refuses a null operation input: give what it names a value"
            )
        else:
            resolver.ctx.problems.warn(pos, f"{what} (set by its type; IM would refuse it)")
    return inputs


def implementation(
    ctx: Context, node: NodeTemplate, impl: Any, pos: Position | None
) -> tuple[str | None, str | None]:
    return _implementation(ctx, node, impl, pos)


def node_operations(ctx: Context, resolver: Resolver, node: NodeTemplate) -> list[Operation]:
    type_std = _standard(ctx.registry.merged("node_types", node.type, "interfaces"))
    given = node.raw.get("interfaces")
    if given is not None and not isinstance(given, PMap):
        ctx.problems.add(node.raw.value_pos("interfaces"), "'interfaces' must be a mapping")
        given = None
    for name in given or {}:
        if name not in STANDARD:
            where = _key_pos(given, name, node.position)
            ctx.problems.warn(where, f"node '{node.name}': interface '{name}' ignored")
    tpl_std = _standard(given)
    for name in tpl_std:
        if name not in (*_KNOWN_OPS, "type", "inputs", "description"):
            ctx.problems.add(
                _key_pos(tpl_std, name, node.position),
                f"unknown operation '{name}' in interface Standard of node '{node.name}'",
                suggest(str(name), _KNOWN_OPS),
            )
    ops: list[Operation] = []
    for op in LIFECYCLE:
        type_impl, type_inputs = _op_parts(type_std.get(op))
        tpl_impl, tpl_inputs = _op_parts(tpl_std.get(op))
        if type_impl is None and tpl_impl is None and op not in tpl_std:
            continue
        inherited = op not in tpl_std
        pos = node.position if inherited else _key_pos(tpl_std, op, node.position)
        impl_pos = pos if tpl_impl is None else child_pos(tpl_std.get(op), "implementation", None)
        implementation, inline = _implementation(
            ctx, node, tpl_impl if tpl_impl is not None else type_impl, impl_pos or pos
        )
        inputs = operation_inputs(
            resolver, node.name, pos, [type_std.get("inputs"), type_inputs],
            [tpl_std.get("inputs"), tpl_inputs], own_from=1,
        )  # fmt: skip
        if implementation is None and inline is None:
            ctx.problems.add(pos, f"operation '{op}' of node '{node.name}' has no implementation")
            continue
        ops.append(Operation(op, implementation, inline, inputs, inherited, pos))
    return ops
