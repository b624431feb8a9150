"""Container apps (tosca.nodes.Container.Application): a Deployment of `count` replicas, a
ConfigMap for text config files and a Secret for base64 ones (downloaded under the fetch rules
when given by URL), PVCs, Services for published and exposed ports, and an Ingress (optional
class, cert-manager issuer) for an app with an endpoint URL.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from orbis.model.infrastructure import ContainerApp, Volume
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    ProviderError,
    Transient,
)
from orbis.providers.kubernetes.objects import CERT_MANAGER_ISSUER, Objects
from orbis.providers.kubernetes.session import (
    LABEL_APP,
    LABEL_NAME,
    _dns,
    _image,
    _label,
    _ports,
    _quantity,
)

BASE64 = "base64"  # a config file's `encoding`: its content is base64 (mounted from a Secret)


def _ingress_url(what: str, app: ContainerApp) -> str | None:
    """The app's `ingress_url` as `http(s)://<host><path>`, checked before anything is made."""
    if not app.ingress_url:
        return None
    parts = urlsplit(app.ingress_url if "://" in app.ingress_url else f"http://{app.ingress_url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProviderError(f"kubernetes: {what}: {app.ingress_url!r} is not an http(s) URL")
    first = app.publish_ports[0] if app.publish_ports else None
    if first is None or (first.protocol or "tcp").lower() != "tcp":
        raise ProviderError(f"kubernetes: {what}: an Ingress ({app.ingress_url}) needs a "
                            "first published port that is TCP")  # fmt: skip
    return f"{parts.scheme}://{parts.hostname}{parts.path or '/'}"


class Apps(Objects):
    """apply_app and remove_app."""

    def apply_app(self, infrastructure_id: str, app: ContainerApp,
                  volumes: Mapping[str, Volume] | None = None) -> list[str]:  # fmt: skip
        """Create or update an app: a Deployment of `app.count` replicas, its config files as
        a ConfigMap (text) and a Secret (base64 content, see `_secret_data`), PVCs for its
        volumes, Services for its ports and, when it has an `ingress_url`, an Ingress to its
        first published port. Returns its endpoints: that URL first, then `<address>:<port>`
        for published ports and `<service>.<namespace>.svc:<port>` for exposed ones. `volumes`
        gives the BlockStorage nodes the app's volumes name (size, class, id)."""
        if app.count == 0:  # IM: count 0 on update removes the app
            self.remove_app(infrastructure_id, app)
            return []
        what = f"app {app.name} of {infrastructure_id}"
        image = _image(app.image)  # before anything is made
        ingress_url = _ingress_url(what, app)
        ns = self._ensure_namespace(infrastructure_id, app.namespace)
        name = self._object_name(app.name, infrastructure_id)
        labels = self._labels(infrastructure_id, **{LABEL_APP: app.name, LABEL_NAME: name})
        mounts: list[dict[str, Any]] = []
        pod_volumes: list[dict[str, Any]] = []
        files = [(i, f, str(f.get("encoding") or "").lower() == BASE64)
                 for i, f in enumerate(app.config_files)]  # fmt: skip
        text = [(i, f) for i, f, is_base64 in files if not is_base64]
        secret = [(i, f) for i, f, is_base64 in files if is_base64]
        for kind, part, source, given, content in (
            ("config_map", "files", "configMap", text, self._file_content),
            ("secret", "secret-files", "secret", secret, self._secret_data),
        ):  # fmt: skip
            object_name = f"{name}-{part}"
            if not given:  # none (any more): an update leaves no stale copy behind
                self._call(what, getattr(self._core, f"delete_namespaced_{kind}"),
                           object_name, ns, ok=(404,))  # fmt: skip
                continue
            data = {f"file{i}": content(what, f) for i, f in given}
            self._upsert(what, kind, ns, {"metadata": {"name": object_name, "labels": labels},
                                          "data": data})  # fmt: skip
            ref = {"secretName": object_name} if kind == "secret" else {"name": object_name}
            pod_volumes.append({"name": part, source: ref})
            mounts += [{"name": part, "mountPath": f["path"], "subPath": f"file{i}"}
                       for i, f in given]  # fmt: skip
        for volume_node, path in app.volumes:
            volume = (volumes or {}).get(volume_node) or Volume(name=volume_node)
            if not volume.size and not volume.volume_id:  # an app's volume is always made
                volume = replace(volume, size=int(_quantity(self._default_volume)))
            claim = self._claim(what, ns, name, labels, volume)
            if claim is None:  # cannot happen: the volume was given a size above
                raise ProviderError(f"kubernetes: {what}: volume {volume_node} has no size")
            pod_volumes.append({"name": claim, "persistentVolumeClaim": {"claimName": claim}})
            mounts.append({"name": claim, "mountPath": path})
        container: dict[str, Any] = {
            "name": _dns(app.name),
            "image": image,
            "env": [{"name": k, "value": str(v)} for k, v in app.environment.items()],
            "resources": self._resources(app.num_cpus, app.mem_size, app.num_gpus),
            "ports": [{"containerPort": t, "protocol": proto}
                      for _, t, proto in _ports([*app.publish_ports, *app.expose_ports])],
            "volumeMounts": mounts,
        }  # fmt: skip
        if app.command:
            container["command"] = list(app.command)
        pod = {"containers": [container], "volumes": pod_volumes}
        self._deployment(what, ns, name, labels, pod, app.count, recreate=bool(app.volumes))
        endpoints = []
        for suffix, ports, kind in (("pub", app.publish_ports, self._public_service),
                                    ("priv", app.expose_ports, "ClusterIP")):  # fmt: skip
            if not ports:
                continue
            service_name = f"{name}-{suffix}"
            expanded = _ports(ports)
            self._service(what, ns, service_name, labels, {LABEL_NAME: name}, expanded, kind)
            for port, _, _ in expanded:
                if kind == "ClusterIP":
                    endpoints.append(f"{service_name}.{ns}.svc:{port}")
                else:
                    endpoints.append(self._wait(what, partial(
                        self._app_address, ns, service_name, port)))  # fmt: skip
        if ingress_url is None:  # none (any more): remove the one an earlier apply made
            self._delete_selected(ns, {LABEL_NAME: name}, kinds=("ingress",))
            return endpoints
        self._ingress(what, ns, name, labels, ingress_url, app.publish_ports[0].port)
        return [ingress_url, *endpoints]

    def _ingress(self, what: str, ns: str, name: str, labels: Mapping[str, str], url: str,
                 port: int) -> Any:  # fmt: skip
        """The app's Ingress: `url`'s host and path (a prefix) to port `port` of its published
        Service, with TLS (a Secret `<name>-tls`) when the URL is https."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        backend = {"service": {"name": f"{name}-pub", "port": {"number": port}}}
        path = {"path": parts.path or "/", "pathType": "Prefix", "backend": backend}
        spec: dict[str, Any] = {"rules": [{"host": host, "http": {"paths": [path]}}]}
        metadata: dict[str, Any] = {"name": name, "labels": dict(labels)}
        if self._ingress_class:
            spec["ingressClassName"] = str(self._ingress_class)
        if parts.scheme == "https":
            spec["tls"] = [{"hosts": [host], "secretName": f"{name}-tls"}]
            if self._cluster_issuer:  # cert-manager makes (and renews) that Secret
                metadata["annotations"] = {CERT_MANAGER_ISSUER: str(self._cluster_issuer)}
        return self._upsert(what, "ingress", ns, {"metadata": metadata, "spec": spec})

    def _app_address(self, ns: str, service_name: str, port: int) -> str | None:
        """`<address>:<port>` of a published port, once the service has an address."""
        service = self._must(f"service {service_name}", self._core.read_namespaced_service,
                             service_name, ns)  # fmt: skip
        address, outside = self._public_address(service, port)
        return f"{address}:{outside}" if address else None

    def _download(self, what: str, entry: Mapping[str, Any]) -> bytes:
        url = str(entry.get("url") or "")
        if not url.startswith(("http://", "https://")):
            raise ProviderError(f"kubernetes: {what}: config file {entry.get('path')} has no "
                                "content nor an http(s) URL")  # fmt: skip
        from orbis.net.fetch import FetchError, FetchFailed, FetchTimeout, fetch  # the rules

        try:
            return fetch(url)
        except (FetchFailed, FetchTimeout) as err:
            raise Transient(f"kubernetes: {what}: cannot download {err}") from None
        except FetchError as err:  # a rule (address, size, scheme): retrying cannot help
            raise ProviderError(f"kubernetes: {what}: cannot download {err}") from None

    def _secret_data(self, what: str, entry: Mapping[str, Any]) -> str:
        """A base64 file's Secret `data` value: its content (given, or downloaded) as the
        base64 text it is — the API decodes it and the mounted file holds those bytes. Strict:
        standard alphabet, padded; line breaks and spaces are dropped."""
        given = entry.get("content")
        raw = str(given).encode() if given is not None else self._download(what, entry)
        compact = re.sub(rb"\s+", b"", raw)
        try:
            base64.b64decode(compact, validate=True)
        except ValueError:
            raise ProviderError(f"kubernetes: {what}: config file {entry.get('path')} is marked "
                                "base64 but its content is not base64") from None  # fmt: skip
        return compact.decode("ascii")

    def _file_content(self, what: str, entry: Mapping[str, Any]) -> str:
        if entry.get("content") is not None:
            return str(entry["content"])
        url = str(entry.get("url") or "")
        data = self._download(what, entry)
        try:  # a ConfigMap's `data` holds text only
            return data.decode()
        except UnicodeDecodeError as err:
            raise ProviderError(
                f"kubernetes: {what}: config file {entry.get('path')} ({url}) "
                f"is not UTF-8 text ({err.reason} at byte {err.start})"
            ) from None

    def remove_app(self, infrastructure_id: str, app: ContainerApp | str) -> None:
        """Delete an app's Deployment, Ingress, Services, ConfigMap, Secret and PVCs."""
        app_name = app if isinstance(app, str) else app.name
        namespace = None if isinstance(app, str) else app.namespace
        ns = namespace or self.namespace(infrastructure_id)
        labels = {LABEL_INFRASTRUCTURE: _label(infrastructure_id), LABEL_APP: _label(app_name)}
        self._delete_selected(ns, labels)
