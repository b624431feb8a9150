"""RADL systems that are functions (OSCAR services, AWS Lambda functions), both ways.

IM makes a system a function when its OSCAR or Lambda connector takes it: the system has a
`name` and a `script`, its `provider.type` (if any) is `oscar` or `lambda`, and its image is
`oscar://<cluster>/…`, `docker://…`, `lambda://…` or a bare image (an ECR one for Lambda). The
features those connectors read become a `ServerlessFunction` shaped as the TOSCA FaaS node's
(lang/tosca/apps.py), so the functions engine handles both alike; features they do not read are
kept and written back. docs/radl.md has the table.
"""

from __future__ import annotations

import re
from typing import Any

from orbis.lang.errors import Problems
from orbis.lang.radl.ast import Feature, Soft
from orbis.lang.radl.encoding import decode, encode_merged
from orbis.lang.radl.mapping import _Taker
from orbis.lang.radl.units import format_size
from orbis.lang.radl.values import Merged, Value
from orbis.model.infrastructure import Position, ServerlessFunction

FUNCTION_TYPE = "radl.function"
KEPT = "radl.features"  # the features no field takes, in `properties`, written back as they are
IMAGE_SCHEMES = ("docker", "oscar", "lambda")
PROVIDER_TYPES = ("oscar", "lambda")
EXPOSE = ("min_scale", "max_scale", "port", "cpu_threshold")
# storage provider kinds IM's connectors read (`<kind>.N.id` and these fields)
STORAGE = {
    "minio": ("endpoint", "verify", "access_key", "secret_key", "region"),
    "s3": ("access_key", "secret_key", "region"),
    "onedata": ("oneprovider_host", "token", "space"),
}
_IO_FIELDS = ("provider", "path", "suffix", "prefix")
_IO_KEYS = {"provider": "storage_provider"}
_STRUCTURED = re.compile(r"(input|output|expose|minio|s3|onedata)\.")


def is_function(merged: Merged) -> bool:
    """Whether IM's OSCAR or Lambda connector would take this system."""
    values = merged.values
    if not all(_text(values.get(k)) for k in ("name", "script")):
        return False
    kind = values.get("provider.type")
    if kind is not None and (_text(kind) or "").lower() not in PROVIDER_TYPES:
        return False
    image = _text(values.get("disk.0.image.url"))
    if not image:
        return False
    scheme, found, _ = image.partition("://")
    return not found or scheme.lower() in IMAGE_SCHEMES


def _text(value: Value | None) -> str | None:
    return value.string if value is not None and value.kind == "str" else None


def _flag(value: Value | None) -> bool:
    """IM takes any value as set; 'no' and 'false' (and 0) are read as unset here."""
    if value is None:
        return False
    if value.kind == "num":
        return bool(value.number())
    if value.kind == "str":
        return (value.string or "").strip().lower() not in ("", "no", "false", "0")
    return bool(value.items)


def map_function(name: str, merged: Merged, count: int, cloud: str | None,
                 position: Position | None, problems: Problems) -> ServerlessFunction:  # fmt: skip
    """The function of a system `is_function` accepts (deployed `count` times, on `cloud`)."""
    t = _Taker(merged)
    service, script = t.text("name"), t.text("script")
    image = t.text("disk.0.image.url") or ""
    if image.lower().startswith("lambda://"):  # IM's Lambda scheme: the ECR reference
        image = image[len("lambda://"):]
    memory, cpu = t.number("memory.size", keep_max=False), t.number("cpu.count", keep_max=False)
    props: dict[str, Any] = {"name": service, "image": image, "script": script}
    if cpu is not None:
        props["cpu"] = float(cpu)
    gpus = t.take("gpu.count")
    for prop, value in (("enable_gpu", gpus), ("enable_sgx", t.take("cpu.sgx")),
                        ("alpine", t.take("alpine"))):  # fmt: skip
        if _flag(value):
            props[prop] = True
    secrets = t.take("image_pull_secrets")
    if secrets is not None:
        props["image_pull_secrets"] = secrets.items if secrets.kind == "list" else [
            str(secrets.plain())]  # fmt: skip
    exposed = {k: v.plain() for k in EXPOSE if (v := t.take(f"expose.{k}")) is not None}
    if exposed:
        props["exposed"] = exposed
    environment = _environment(name, t.take("environment.variables"), problems)
    if environment:
        props["env_variables"] = environment
    inputs, outputs = _io(t, "input"), _io(t, "output")
    props.update({k: v for k, v in (("input", inputs), ("output", outputs)) if v})
    storage = _storage(t)
    if storage:
        props["storage_providers"] = storage
    kept = {**encode_merged(Merged(t.values, merged.softs)), **t.extra}
    for feature in sorted(k for k in kept if _STRUCTURED.match(k)):
        problems.warn(position, f"function '{name}': feature '{feature}' is not read (IM reads "
                      "input.N.*, output.N.*, expose.*, minio.N.*, s3.N.*, onedata.N.*; N "
                      "counted from 0)")  # fmt: skip
    if kept:
        props[KEPT] = kept
    return ServerlessFunction(
        name=name, type=FUNCTION_TYPE, image=image, script=script, count=count,
        memory=None if memory is None else int(memory),
        cpu=None if cpu is None else float(cpu), environment=environment,
        inputs=inputs, outputs=outputs, storage_providers=storage, host=None,
        cloud_id=cloud, properties=props, position=position)  # fmt: skip


def _environment(name: str, value: Value | None, problems: Problems) -> dict[str, str]:
    """IM's `environment.variables = ['NAME:value', …]`."""
    if value is None:
        return {}
    items = value.items if value.kind == "list" else [str(value.plain())]
    out = {}
    for item in items:
        key, colon, rest = item.partition(":")
        if not colon or not key:
            problems.warn(value.pos, f"function '{name}': environment variable '{item}' is "
                          "not 'NAME:value': left out")  # fmt: skip
            continue
        out[key] = rest
    return out


def _io(t: _Taker, kind: str) -> list[dict[str, Any]]:
    """`input.N.provider/path/suffix/prefix` from N = 0 up to the first gap, as IM reads them."""
    out = []
    index = 0
    while _text(t.values.get(f"{kind}.{index}.provider")):
        item: dict[str, Any] = {}
        for field in _IO_FIELDS:
            value = t.take(f"{kind}.{index}.{field}")
            if value is not None:
                item[_IO_KEYS.get(field, field)] = value.plain()
        out.append(item)
        index += 1
    return out


def _storage(t: _Taker) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, fields in STORAGE.items():
        index = 0
        while sid := t.text(f"{kind}.{index}.id"):
            entry: dict[str, Any] = {}
            for field in fields:
                value = t.take(f"{kind}.{index}.{field}")
                if value is not None:
                    entry[field] = _flag(value) if field == "verify" else value.plain()
            out.setdefault(kind, {}).setdefault(sid, {}).update(entry)
            index += 1
    return out


def _eq(name: str, value: Any) -> Feature:
    return Feature(name, "=", value)


def function_features(fn: ServerlessFunction) -> list[Feature | Soft]:
    """The RADL system of a standalone function (the inverse of `map_function`)."""
    props = fn.properties
    eq = _eq
    out: list[Feature | Soft] = [eq("name", str(props.get("name") or fn.name))]
    if fn.script is not None:
        out.append(eq("script", fn.script))
    if fn.image:
        out.append(eq("disk.0.image.url", fn.image))
    if fn.memory:
        out.append(Feature("memory.size", "=", fn.memory, text=format_size(fn.memory)))
    if fn.cpu is not None:
        out.append(eq("cpu.count", int(fn.cpu) if fn.cpu.is_integer() else fn.cpu))
    flags: tuple[tuple[str, str, Any], ...] = (
        ("enable_gpu", "gpu.count", 1), ("enable_sgx", "cpu.sgx", "yes"),
        ("alpine", "alpine", "yes"))  # fmt: skip
    for prop, feature, flag in flags:
        if props.get(prop):
            out.append(eq(feature, flag))
    if props.get("image_pull_secrets"):
        out.append(eq("image_pull_secrets", [str(s) for s in props["image_pull_secrets"]]))
    exposed = props.get("exposed")
    for key, setting in (exposed.items() if isinstance(exposed, dict) else []):
        out.append(eq(f"expose.{key}", setting))
    if fn.environment:
        out.append(eq("environment.variables", [f"{k}:{v}" for k, v in fn.environment.items()]))
    for kind, items in (("input", fn.inputs), ("output", fn.outputs)):
        for index, item in enumerate(items):
            for field in _IO_FIELDS:
                given = item.get(_IO_KEYS.get(field, field)) if isinstance(item, dict) else None
                if given is not None:
                    out.append(eq(f"{kind}.{index}.{field}", given))
    for kind, entries in (fn.storage_providers or {}).items():
        for index, (sid, conf) in enumerate((entries or {}).items()):
            out.append(eq(f"{kind}.{index}.id", str(sid)))
            for field, value in (conf or {}).items():
                out.append(eq(f"{kind}.{index}.{field}", value))
    kept = props.get(KEPT)
    return out + (decode(kept) if isinstance(kept, dict) else [])
