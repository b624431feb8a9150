"""The OSCAR service definition (FDL, as POSTed to `/system/services`) of one function.

Pure: a `ServerlessFunction` from the template in, a JSON-ready dict out, or `FdlError` naming
the function and the field. Every field IM maps is mapped (name, image, script, memory, cpu,
environment variables and secrets, input/output, storage providers, log level, alpine, GPU/SGX,
exposed, image pull secrets) plus OSCAR's replicas and the clusters they name, and the fields of
newer OSCAR releases IM's type lacks (fdl_newer.py; `mount` here: it names a storage provider).
Field names and shapes are OSCAR's (its Go types' JSON tags) and carry what IM sends
(docs/functions.md, "Checked against IM"): memory in MiB (`memory_of`), cpu as a string
(`"0.5"`), paths as written, environment variables under IM's `Variables` and OSCAR's
`variables`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from orbis.model.infrastructure import ServerlessFunction
from orbis.providers.oscar.fdl_newer import FieldError, expose, newer_fields

# OSCAR's storage provider kinds and the fields each takes (the TOSCA types' data types)
STORAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "minio": ("endpoint", "verify", "access_key", "secret_key", "region"),
    "s3": ("access_key", "secret_key", "region"),
    "onedata": ("oneprovider_host", "token", "space"),
    "webdav": ("hostname", "login", "password"),
    # newer OSCAR (docs/fdl.md); no TOSCA type names it yet
    "rucio": ("host", "auth_host", "account", "rse", "refresh_token", "oidc_audience",
              "token_endpoint"),
}
# host names OSCAR prefixes with https:// itself (its FDL says: skip the protocol)
HOST_ONLY = frozenset({"oneprovider_host", "hostname", "host", "auth_host"})
REPLICA_TYPES = ("oscar", "endpoint")
REPLICA_FIELDS = ("type", "cluster_id", "service_name", "url", "ssl_verify", "priority", "headers")
HOSTED_FLAGS = ("alpine", "enable_gpu")  # IM's recipe sends them always, false or true
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")
# a Kubernetes object name: OSCAR services are Kubernetes services
SERVICE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class FdlError(ValueError):
    """A function that cannot become an OSCAR service; the message names function and field."""


def image_of(image: str | None, fn: str) -> str:
    """The container image OSCAR runs for a template's image (IM's rule: `docker://x`, a bare
    name, or `oscar://<cluster>/x`)."""
    if not image:
        raise FdlError(f"function '{fn}': image is required")
    parts = urlsplit(image)
    if "://" not in image:
        return image
    if parts.scheme == "docker":
        return f"{parts.netloc}{parts.path}"
    if parts.scheme == "oscar":
        return parts.path.lstrip("/")
    raise FdlError(f"function '{fn}': image '{image}' has scheme '{parts.scheme}' "
                   "(OSCAR takes docker://, oscar://<cluster>/ or a bare image)")  # fmt: skip


def memory_of(size: int, *, hosted: bool) -> str:
    """OSCAR's memory for `size` bytes, as IM writes it: its recipe for a hosted function sends
    whole MiB (512 MB -> `488Mi`), its OSCAR connector MiB as `%g` (`488.281Mi`)."""
    mib = size / 2**20
    return f"{max(1, math.floor(mib))}Mi" if hosted else f"{mib:g}Mi"


def service_definition(
    fn: ServerlessFunction, *, clusters: Mapping[str, Mapping[str, Any]] | None = None,
    extra_storage: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The FDL of `fn`. `clusters` (id → {endpoint, auth_user, auth_password, ssl_verify}) are
    the OSCAR clusters its replicas may name (filled by the engine from the user's auth lines);
    `extra_storage` adds storage providers the template does not spell out (another cluster's
    MinIO, for a replica that writes back to it)."""
    props = fn.properties
    name = str(props.get("name") or "")
    if not SERVICE_NAME.match(name):
        raise FdlError(f"function '{fn.name}': name '{name}' is not a valid OSCAR service name "
                       "(lower-case letters, digits and '-', at most 63)")  # fmt: skip
    if not fn.script:
        raise FdlError(f"function '{fn.name}': script is required")
    service: dict[str, Any] = {"name": name, "image": image_of(fn.image, fn.name),
                               "script": fn.script}  # fmt: skip
    if fn.memory:
        service["memory"] = memory_of(fn.memory, hosted=bool(fn.host))
    if fn.cpu is not None:
        service["cpu"] = f"{fn.cpu:g}"
    if props.get("log_level") is not None:
        level = str(props["log_level"]).upper()
        if level not in LOG_LEVELS:
            raise FdlError(f"function '{fn.name}': log_level '{props['log_level']}' is not one "
                           f"of {', '.join(LOG_LEVELS)}")  # fmt: skip
        service["log_level"] = level
    for flag in ("alpine", "enable_gpu", "enable_sgx"):
        if props.get(flag):
            service[flag] = True
        elif fn.host and flag in HOSTED_FLAGS:  # IM's recipe sends these two even when false
            service[flag] = False
    if props.get("image_pull_secrets"):
        service["image_pull_secrets"] = [str(s) for s in props["image_pull_secrets"]]
    exposed = props.get("exposed") or {}
    try:
        if exposed:
            if not isinstance(exposed, Mapping):
                raise FieldError("exposed must be a map")
            service["expose"] = expose(exposed)
        service.update(newer_fields(props))  # fields of newer OSCAR (fdl_newer.py)
    except FieldError as exc:
        raise FdlError(f"function '{fn.name}': {exc}") from None
    environment: dict[str, Any] = {}
    if fn.environment:
        # IM writes `Variables`, OSCAR's JSON name is `variables` (its Go decoder matches keys
        # without case, so it reads either, and both together as one map): both are sent
        environment["Variables"] = dict(fn.environment)
        environment["variables"] = dict(fn.environment)
    secrets = props.get("secrets") or {}
    if secrets:
        if not isinstance(secrets, Mapping):
            raise FdlError(f"function '{fn.name}': secrets must be a map of names to values")
        environment["secrets"] = {str(k): str(v) for k, v in secrets.items()}
    if environment:
        service["environment"] = environment
    storage = _storage(fn.name, fn.storage_providers)
    for kind, entries in (extra_storage or {}).items():
        for sid, conf in entries.items():
            storage.setdefault(kind, {}).setdefault(sid, dict(conf))
    for key, items in (("input", fn.inputs), ("output", fn.outputs)):
        if items:
            service[key] = [_io(fn.name, key, i, item, storage) for i, item in enumerate(items)]
    if props.get("mount"):  # a storage provider's path as a folder of the service
        mount = _io(fn.name, "mount", 0, props["mount"], storage)
        service["mount"] = {k: mount[k] for k in ("storage_provider", "path")}
    if storage:
        service["storage_providers"] = storage
    replicas = props.get("replicas") or []
    if replicas:
        service["replicas"], used = _replicas(fn.name, replicas, clusters or {})
        if used:
            service["clusters"] = used
    return service


def spec_digest(service: Mapping[str, Any]) -> str:
    """A digest of a service definition: the engine PUTs only when it changed."""
    return hashlib.sha256(json.dumps(service, sort_keys=True).encode()).hexdigest()[:32]


def _storage(fn: str, providers: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, entries in (providers or {}).items():
        if kind not in STORAGE_FIELDS:
            raise FdlError(f"function '{fn}': storage_providers.{kind} is not an OSCAR storage "
                           f"provider ({', '.join(STORAGE_FIELDS)})")  # fmt: skip
        if not isinstance(entries, Mapping):
            raise FdlError(f"function '{fn}': storage_providers.{kind} must map ids to settings")
        for sid, conf in entries.items():
            if not isinstance(conf, Mapping):
                raise FdlError(f"function '{fn}': storage_providers.{kind}.{sid} must be a map")
            unknown = sorted(set(conf) - set(STORAGE_FIELDS[kind]))
            if unknown:
                raise FdlError(f"function '{fn}': storage_providers.{kind}.{sid}: unknown field "
                               f"{unknown[0]} ({kind} takes "
                               f"{', '.join(STORAGE_FIELDS[kind])})")  # fmt: skip
            entry = {k: (bool(v) if k == "verify" else str(v)) for k, v in conf.items()}
            for key in sorted(HOST_ONLY.intersection(entry)):
                host = str(entry[key])
                if "://" in host or "/" in host.strip("/"):
                    raise FdlError(f"function '{fn}': storage_providers.{kind}.{sid}.{key}: "
                                   f"give the host name alone, without a scheme or path "
                                   f"('{host}'): OSCAR adds https://")  # fmt: skip
            if kind == "minio":
                entry.setdefault("verify", False)  # IM sends verify false when not given
            out.setdefault(kind, {})[str(sid)] = entry
    return out


def _io(fn: str, key: str, index: int, item: Any,
        storage: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:  # fmt: skip
    where = f"function '{fn}': {key}" + ("" if key == "mount" else f"[{index}]")
    if not isinstance(item, Mapping):
        raise FdlError(f"{where} must be a map with storage_provider and path")
    provider = str(item.get("storage_provider") or "")
    path = str(item.get("path") or "")
    if not provider or not path.strip(" /"):
        raise FdlError(f"{where} needs storage_provider and path")
    kind, _, sid = provider.partition(".")
    if kind not in STORAGE_FIELDS:
        raise FdlError(f"{where}: storage provider '{provider}' is not of an OSCAR kind "
                       f"({', '.join(STORAGE_FIELDS)})")  # fmt: skip
    # the cluster's own MinIO is `minio` / `minio.default`; any other must be defined
    if not (kind == "minio" and sid in ("", "default")) and sid not in storage.get(kind, {}):
        raise FdlError(f"{where}: storage provider '{provider}' is not defined in "
                       "storage_providers")  # fmt: skip
    # as written, as IM sends it: OSCAR trims blanks and '/' around a path itself
    out: dict[str, Any] = {"storage_provider": provider, "path": path}
    for extra in ("suffix", "prefix"):
        value = item.get(extra)
        if value:
            out[extra] = [str(v) for v in (value if isinstance(value, list) else [value])]
    return out


def _replicas(
    fn: str, replicas: Any, clusters: Mapping[str, Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    if not isinstance(replicas, list):
        raise FdlError(f"function '{fn}': replicas must be a list")
    out: list[dict[str, Any]] = []
    used: dict[str, dict[str, Any]] = {}
    for index, replica in enumerate(replicas):
        where = f"function '{fn}': replicas[{index}]"
        if not isinstance(replica, Mapping):
            raise FdlError(f"{where} must be a map")
        unknown = sorted(set(replica) - set(REPLICA_FIELDS))
        if unknown:
            raise FdlError(f"{where}: unknown field {unknown[0]} "
                           f"({', '.join(REPLICA_FIELDS)})")  # fmt: skip
        kind = str(replica.get("type") or "")
        if kind not in REPLICA_TYPES:
            raise FdlError(f"{where}: type must be oscar or endpoint, not '{kind}'")
        entry: dict[str, Any] = {"type": kind, "priority": int(replica.get("priority") or 0)}
        if kind == "endpoint":
            url = str(replica.get("url") or "")
            if not url.startswith(("http://", "https://")):
                raise FdlError(f"{where}: a replica of type endpoint needs a url (http/https)")
            entry["url"] = url
            entry["ssl_verify"] = bool(replica.get("ssl_verify", True))
            headers = replica.get("headers") or {}
            if not isinstance(headers, Mapping):
                raise FdlError(f"{where}: headers must be a map")
            if headers:
                entry["headers"] = {str(k): str(v) for k, v in headers.items()}
        else:
            cluster = str(replica.get("cluster_id") or "")
            service = str(replica.get("service_name") or "")
            if not cluster or not service:
                raise FdlError(f"{where}: a replica of type oscar needs cluster_id and "
                               "service_name")  # fmt: skip
            found = clusters.get(cluster)
            if not found or not found.get("endpoint"):
                raise FdlError(f"{where}: cluster '{cluster}' has no URL (no OSCAR auth line "
                               f"with id = {cluster} and a host)")  # fmt: skip
            entry.update(cluster_id=cluster, service_name=service)
            if "ssl_verify" in replica:
                entry["ssl_verify"] = bool(replica["ssl_verify"])
            used[cluster] = dict(found)
        out.append(entry)
    out.sort(key=lambda r: r["priority"])  # 0 first: OSCAR tries them in this order
    return out, used
