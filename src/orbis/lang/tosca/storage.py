"""BlockStorage nodes attached to a Compute (any relationship ending in AttachesTo) → Volumes."""

from __future__ import annotations

from typing import Any

from orbis.lang.tosca.context import STORAGE, Context
from orbis.lang.tosca.datatypes import im_size_to_bytes
from orbis.lang.tosca.functions import Resolver
from orbis.lang.tosca.properties import node_properties
from orbis.lang.yaml_positions import child_pos
from orbis.model.infrastructure import Function, Template, Volume


def _text(value: Any) -> str | None:
    return None if value in (None, "") or isinstance(value, Function) else str(value)


def attach_volumes(ctx: Context, resolver: Resolver, template: Template) -> set[str]:
    """Fill Compute.volumes (disk.1, disk.2, ... in requirement order); the storage nodes used."""
    used: set[str] = set()
    for compute in template.computes.values():
        node = ctx.nodes[compute.name]
        index = 1
        for req in node.requirements:
            target = ctx.nodes[req.target]
            if not req.relationship.endswith("AttachesTo") or target.kind != STORAGE:
                continue
            used.add(target.name)
            props = node_properties(ctx, resolver, target)
            size, volume_id = props.get("size"), _text(props.get("volume_id"))
            if size is None and volume_id is None:
                ctx.problems.warn(
                    target.position,
                    f"block storage '{target.name}' has neither "
                    "size nor volume_id: ignored (as IM)",
                )
                continue
            rel: dict[str, Any] = {}
            defaults = ctx.registry.merged("relationship_types", req.relationship, "properties")
            for name, definition in defaults.items():
                if isinstance(definition, dict) and definition.get("default") is not None:
                    rel[name] = definition["default"]
            given = req.properties if isinstance(req.properties, dict) else {}
            for key, value in given.items():
                rel[str(key)] = resolver.resolve(value, child_pos(given, key), node.name)
            location = _text(rel.get("location"))
            fs_type = _text(rel.get("fs_type"))
            compute.volumes.append(
                Volume(
                    name=target.name,
                    index=index,
                    size=im_size_to_bytes(size),
                    volume_id=volume_id,
                    type=_text(props.get("type")),
                    mount_path=location,
                    device=_text(rel.get("device")),
                    # IM formats what it mounts; ext4 unless the (indigo) relationship says
                    fs_type=(fs_type or "ext4") if location else fs_type,
                    position=target.position,
                )
            )
            index += 1
    return used
