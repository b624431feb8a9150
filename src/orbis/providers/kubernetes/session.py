"""The auth line's API client, typed errors, names and labels every concern shares.

`host` + `token` (or `username` + `password`, sent as Basic in the authorization header);
`_call` is one API call with the errors of providers/base.py; a namespace per infrastructure
(`orbis-<id>`) unless the line fixes one; object names carry the infrastructure's hash.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from typing import Any, TypeVar
from urllib.parse import urlsplit

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from orbis.model.infrastructure import PortSpec
from orbis.net.guarded import guard_pool_manager
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    NotFound,
    Provider,
    ProviderAuthError,
    ProviderError,
    QuotaExceeded,
    Transient,
)

LABEL_NAME = "orbis.name"  # the Deployment a node's (or app's) objects belong to


LABEL_APP = "orbis.app"  # a container app (tosca.nodes.Container.Application)


SSH_PORT = 22


_UNITS = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}

_UNITS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


MB, GB = 2**20, 2**30


T = TypeVar("T")


def _dns(text: str, size: int = 63) -> str:
    """A DNS-1035 label (what Service names need): lower-case, starts with a letter."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if not name[:1].isalpha():
        name = f"n-{name}"
    return name[:size].rstrip("-")


def _label(value: str) -> str:
    """A valid label value: 63 characters of [A-Za-z0-9._-], alphanumeric at both ends."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", value)[:63].strip("-._")


def _selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" if v else k for k, v in labels.items())


def _quantity(text: Any) -> float:
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text).strip())
    return float(match[1]) * _UNITS.get(match[2], 1) if match else 0.0


def _image(url: str | None) -> str:
    """A container image from `docker://<image>` or a bare image name (IM accepts both)."""
    if not url:
        raise NotFound("kubernetes: the node names no container image")
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    if scheme != "docker":
        raise NotFound(f"kubernetes: {url} is not a container image (use docker://<image>)")
    return rest


def _ports(ports: Iterable[PortSpec]) -> list[tuple[int, int, str]]:
    """(port, target port, protocol) for every port, ranges expanded."""
    out = []
    for p in ports:
        for port in range(p.port, (p.range_end or p.port) + 1):
            target = (p.target or p.port) + port - p.port
            out.append((port, target, (p.protocol or "tcp").upper()))
    return out


def _status_message(err: ApiException) -> str:
    """The API's own words (a Status object's message), without the HTTP preamble."""
    data = err.data if isinstance(err.data, dict) else None
    if data is None and err.body:
        with suppress(ValueError):
            data = json.loads(err.body)
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return str(err.reason or f"HTTP {err.status}")


def _typed(what: str, err: ApiException) -> ProviderError:
    status, message = err.status or 0, _status_message(err)
    text = f"kubernetes: {what}: {message}"
    if status == 401:
        return ProviderAuthError(text)
    if status == 403:
        if "is being terminated" in message:  # a namespace still deleting: retry later
            return Transient(text)
        return QuotaExceeded(text) if "exceeded quota" in message else ProviderAuthError(text)
    if status == 404:
        return NotFound(text)
    if status in (408, 429) or status >= 500:
        return Transient(text)
    return ProviderError(text)


class KubernetesSession(Provider):
    """The API clients, calls, waits, names and labels shared by the Kubernetes mixins."""

    def __init__(self, auth: Mapping[str, str], *, options: Mapping[str, Any] | None = None):
        options = options or {}
        self.site = auth.get("id") or "kubernetes"
        host = auth.get("host") or ""
        if not host:
            raise ProviderError("kubernetes: the auth line has no host (the API server's URL)")
        self._host = host if "://" in host else f"https://{host}"
        config = client.Configuration()
        config.host = self._host.rstrip("/")
        config.verify_ssl = bool(options.get("verify_ssl", True))
        if auth.get("token"):
            config.api_key = {"BearerToken": auth["token"]}
            config.api_key_prefix = {"BearerToken": "Bearer"}
        elif auth.get("username"):
            # this client only sends the `authorization` header: put Basic credentials there
            basic = f"{auth['username']}:{auth.get('password', '')}"
            header = urllib3.util.make_headers(basic_auth=basic)["authorization"]
            config.api_key = {"BearerToken": header}
        else:
            raise ProviderAuthError("kubernetes: the auth line needs token or username+password")
        api = client.ApiClient(config)
        if options.get("guard_connections"):  # a user's cluster: checked at each connect
            guard_pool_manager(api.rest_client.pool_manager)
        self._core, self._apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self._networking = client.NetworkingV1Api(api)
        self._fixed_namespace = auth.get("namespace") or options.get("namespace")
        self._public_service = str(options.get("public_service", "NodePort"))
        # a NodePort service is reached on a cluster node: by default the API server's host
        self._node_address = options.get("node_address") or urlsplit(self._host).hostname
        self._poll = float(options.get("poll_interval", 2.0))
        self._launch_timeout = float(options.get("launch_timeout", 600))
        self._request_timeout = float(options.get("request_timeout", 30))
        self._default_volume = str(options.get("default_volume_size", "1Gi"))
        self._ingress_class = options.get("ingress_class") or None
        self._cluster_issuer = options.get("cluster_issuer") or None
        # deletion order: workloads first, then what they use, volumes last
        self._kinds: list[tuple[Any, str]] = [
            (self._apps, "deployment"),
            (self._networking, "ingress"),
            (self._core, "service"),
            (self._core, "config_map"),
            (self._core, "secret"),
            (self._core, "persistent_volume_claim"),
        ]

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, ok: Iterable[int] = (),
              **kwargs: Any) -> Any:  # fmt: skip
        """One API call with typed errors; statuses in `ok` answer None instead."""
        try:
            return fn(*args, _request_timeout=self._request_timeout, **kwargs)
        except ApiException as err:
            if err.status in set(ok):
                return None
            raise _typed(what, err) from None
        except urllib3.exceptions.HTTPError as err:
            reason = getattr(err, "reason", None) or type(err).__name__
            raise Transient(f"kubernetes: {what}: API server unreachable ({reason})") from None

    def _must(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A call that must answer: None (an empty answer) is an error, not a value."""
        result = self._call(what, fn, *args, **kwargs)
        if result is None:
            raise ProviderError(f"kubernetes: {what}: the API server answered nothing")
        return result

    def _wait(self, what: str, check: Callable[[], T | None], timeout: float | None = None) -> T:
        deadline = time.monotonic() + (self._launch_timeout if timeout is None else timeout)
        while True:
            result = check()
            if result is not None:
                return result
            if time.monotonic() > deadline:
                raise Transient(f"kubernetes: {what}: still not ready, gave up waiting")
            time.sleep(self._poll)

    def namespace(self, infrastructure_id: str) -> str:
        return self._fixed_namespace or _dns(f"orbis-{infrastructure_id}")

    def _labels(self, infrastructure_id: str, **more: str) -> dict[str, str]:
        labels = {LABEL_INFRASTRUCTURE: _label(infrastructure_id)}
        if self.installation:
            labels[LABEL_INSTALLATION] = _label(self.installation)
        return labels | {k: _label(v) for k, v in more.items()}

    @staticmethod
    def _object_name(base: str, infrastructure_id: str) -> str:
        # the infrastructure's hash keeps names apart in a namespace shared by infrastructures
        digest = hashlib.sha1(infrastructure_id.encode()).hexdigest()[:6]
        return f"{_dns(base, 45)}-{digest}"

    @staticmethod
    def _split(provider_id: str) -> tuple[str, str]:
        namespace, sep, name = provider_id.partition("/")
        if not sep or not name:
            raise NotFound(f"kubernetes: {provider_id!r} is not <namespace>/<deployment>")
        return namespace, name

    def _ensure_namespace(self, infrastructure_id: str, namespace: str | None = None) -> str:
        ns = namespace or self.namespace(infrastructure_id)
        if ns != self._fixed_namespace:  # the site's namespace is the administrator's
            # only a namespace of its own carries the infrastructure label (cleanup deletes it)
            owned = ns == self.namespace(infrastructure_id)
            labels = self._labels(infrastructure_id) if owned else self._labels("")
            labels = {k: v for k, v in labels.items() if v}
            body = {"metadata": {"name": ns, "labels": labels}}
            self._call(f"namespace {ns}", self._core.create_namespace, body, ok=(409,))
        return ns
