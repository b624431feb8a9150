"""The FDL fields of newer OSCAR releases that IM's FaaS.Function type does not name yet.

Orbis accepts them as properties of any function node (lang/tosca/properties.py
FUNCTION_EXTRAS) and sends them in OSCAR's shapes (its service type's JSON names): quotas for
all of a service's jobs (`total_memory`, `total_cpu`), Knative scaling (`synchronous`), job
delegation (`delegation`, `rescheduler_threshold`), input staging (`file_stage_in`), image
caching (`image_prefetch`), Kubernetes `annotations` and `labels`, the user's `vo`, who may use
the service (`visibility`, `allowed_users`, `isolation_level`), a storage `mount`, a managed
`volume`, and InterLink offloading (`interlink_node_name`). Pure; FdlError names the function
and the field. docs/functions.md lists them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T|k|m)?$")  # Kubernetes
DELEGATIONS = ("static", "random", "load-based", "topsis")
VISIBILITIES = ("private", "public", "restricted")
ISOLATION_LEVELS = ("USER", "SERVICE")
LIFECYCLE_POLICIES = ("delete", "retain")
TRUE, FALSE = ("true", "yes", "1"), ("false", "no", "0")


class FieldError(ValueError):
    """A bad value; the message names the field (the caller adds the function)."""


def boolean(value: Any, field: str) -> bool:
    """A TOSCA boolean, or the string IM's `map of string` types carry."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE or text in FALSE:
        return text in TRUE
    raise FieldError(f"{field} must be true or false, not '{value}'")


def whole(value: Any, field: str, minimum: int = 0) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise FieldError(f"{field} must be a whole number, not '{value}'") from None
    if number < minimum:
        raise FieldError(f"{field} must be at least {minimum}")
    return number


def quantity(value: Any, field: str) -> str:
    text = str(value).strip()
    if not QUANTITY.match(text):
        raise FieldError(f"{field} must be a Kubernetes quantity such as 2Gi, not '{value}'")
    return text


def cpus(value: Any, field: str) -> str:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise FieldError(f"{field} must be a number of CPUs, not '{value}'") from None
    if number <= 0:
        raise FieldError(f"{field} must be more than 0")
    return f"{number:g}"


def one_of(choices: tuple[str, ...]) -> Callable[[Any, str], str]:
    def check(value: Any, field: str) -> str:
        text = str(value).strip()
        if text not in choices:
            raise FieldError(f"{field} must be one of {', '.join(choices)}, not '{value}'")
        return text

    return check


def text(value: Any, field: str) -> str:
    if isinstance(value, Mapping | list) or not str(value).strip():
        raise FieldError(f"{field} must be a non-empty string")
    return str(value).strip()


def string_map(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise FieldError(f"{field} must be a map of names to strings")
    return {str(k): str(v) for k, v in value.items()}


def strings(value: Any, field: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [text(v, f"{field}[{i}]") for i, v in enumerate(items)]


def _fields(value: Any, field: str, known: Mapping[str, Callable[[Any, str], Any]],
            required: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    if not isinstance(value, Mapping):
        raise FieldError(f"{field} must be a map ({', '.join(known)})")
    unknown = sorted(set(map(str, value)) - set(known))
    if unknown:
        raise FieldError(f"{field}.{unknown[0]} is not an OSCAR field ({', '.join(known)})")
    missing = [k for k in required if value.get(k) in (None, "")]
    if missing:
        raise FieldError(f"{field} needs {missing[0]}")
    return {k: known[k](v, f"{field}.{k}") for k, v in value.items() if v is not None}


def synchronous(value: Any, field: str) -> dict[str, Any]:
    return _fields(value, field, {"min_scale": whole, "max_scale": whole})


def volume(value: Any, field: str) -> dict[str, Any]:
    found = _fields(value, field, {"name": text, "size": quantity, "mount_path": text,
                                   "lifecycle_policy": one_of(LIFECYCLE_POLICIES)},
                    required=("size", "mount_path"))  # fmt: skip
    if not found["mount_path"].startswith("/"):
        raise FieldError(f"{field}.mount_path must be an absolute path")
    return found


# property -> check and shape (the JSON name is the property's)
NEWER: dict[str, Callable[[Any, str], Any]] = {
    "total_memory": quantity,
    "total_cpu": cpus,
    "synchronous": synchronous,
    "delegation": one_of(DELEGATIONS),
    "rescheduler_threshold": whole,
    "file_stage_in": boolean,
    "image_prefetch": boolean,
    "annotations": string_map,
    "labels": string_map,
    "vo": text,
    "visibility": one_of(VISIBILITIES),
    "allowed_users": strings,
    "isolation_level": one_of(ISOLATION_LEVELS),
    "volume": volume,
    "interlink_node_name": text,
}
# `exposed` (IM: a map of strings) -> OSCAR's `expose`
EXPOSE: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "min_scale": ("min_scale", whole), "max_scale": ("max_scale", whole),
    "port": ("api_port", whole), "api_port": ("api_port", whole),
    "cpu_threshold": ("cpu_threshold", whole), "rewrite_target": ("rewrite_target", boolean),
    "nodePort": ("nodePort", whole), "node_port": ("nodePort", whole),
    "default_command": ("default_command", boolean), "set_auth": ("set_auth", boolean),
    "health_path": ("health_path", text), "probe_mode": ("probe_mode", text),
}  # fmt: skip


def newer_fields(props: Mapping[str, Any]) -> dict[str, Any]:
    """The newer fields `props` sets, checked and shaped; FieldError names a bad one."""
    found = {name: check(props[name], name) for name, check in NEWER.items()
             if props.get(name) not in (None, "", [], {})}  # fmt: skip
    if found.get("allowed_users") and found.get("visibility") != "restricted":
        raise FieldError("allowed_users needs visibility: restricted")
    return found


def expose(exposed: Mapping[str, Any]) -> dict[str, Any]:
    """OSCAR's `expose` of IM's `exposed`; FieldError names a bad key."""
    out: dict[str, Any] = {}
    for key, value in exposed.items():
        if key not in EXPOSE:
            raise FieldError(f"exposed.{key} is not an OSCAR expose field "
                             f"({', '.join(sorted(EXPOSE))})")  # fmt: skip
        name, check = EXPOSE[key]
        out[name] = check(value, f"exposed.{key}")
    return out
