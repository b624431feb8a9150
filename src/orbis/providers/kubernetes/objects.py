"""The objects nodes and apps are made of: Deployments, Services, PVCs (create or replace,
keeping what the API set), container resources, where a Service is reached from outside, and
deleting by label (with the TLS Secrets cert-manager made for our Ingresses).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orbis.model.infrastructure import Volume
from orbis.providers.base import (
    ProviderError,
)
from orbis.providers.kubernetes.session import (
    LABEL_NAME,
    KubernetesSession,
    _dns,
    _selector,
)

CERT_MANAGER_ISSUER = "cert-manager.io/cluster-issuer"  # cert-manager's Ingress annotation


class Objects(KubernetesSession):
    """Creating, replacing and deleting the cluster objects of nodes and apps."""

    @staticmethod
    def _resources(
        cpus: float | None, memory: int | None, gpus: int | None = None,
        gpu_vendor: str | None = None, disk: int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Requests equal to limits: the node gets what it asked for (Guaranteed QoS)."""
        wanted: dict[str, str] = {}
        if cpus:
            wanted["cpu"] = f"{round(cpus * 1000)}m"
        if memory:
            wanted["memory"] = str(int(memory))
        if disk:
            wanted["ephemeral-storage"] = str(int(disk))
        limits = dict(wanted)
        if gpus:  # extended resources go in limits only (requests default to them)
            vendor = "amd.com" if gpu_vendor and "amd" in gpu_vendor.lower() else "nvidia.com"
            limits[f"{vendor}/gpu"] = str(gpus)
        return {"requests": wanted, "limits": limits} if limits else {}

    def _claim(self, what: str, ns: str, owner: str, labels: Mapping[str, str],
               volume: Volume) -> str | None:  # fmt: skip
        """A PVC for a data volume; `volume_id` binds an existing persistent volume."""
        if not volume.size and not volume.volume_id:
            return None  # IM ignores a storage node with neither size nor id
        claim = f"{owner}-{_dns(volume.name, 15)}"
        spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": str(volume.size or self._default_volume)}},
        }
        if volume.type:
            spec["storageClassName"] = volume.type
        if volume.volume_id:
            spec["volumeName"] = volume.volume_id
        body = {"metadata": {"name": claim, "labels": dict(labels)}, "spec": spec}
        self._call(what, self._core.create_namespaced_persistent_volume_claim, ns, body,
                   ok=(409,))  # fmt: skip
        return claim

    def _service(self, what: str, ns: str, name: str, labels: Mapping[str, str],
                 selector: Mapping[str, str], ports: list[tuple[int, int, str]],
                 kind: str) -> Any:  # fmt: skip
        body = {
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {
                "type": kind,
                "selector": dict(selector),
                "ports": [{"name": f"{proto.lower()}-{port}", "port": port, "targetPort": target,
                           "protocol": proto} for port, target, proto in ports],
            },
        }  # fmt: skip
        return self._upsert(what, "service", ns, body)

    def _deployment(self, what: str, ns: str, name: str, labels: Mapping[str, str],
                    pod: dict[str, Any], replicas: int, recreate: bool) -> Any:  # fmt: skip
        body = {
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {
                "replicas": replicas,
                # a ReadWriteOnce volume cannot be mounted by the old and the new pod at once
                "strategy": {"type": "Recreate" if recreate else "RollingUpdate"},
                "selector": {"matchLabels": {LABEL_NAME: name}},
                "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
            },
        }
        return self._upsert(what, "deployment", ns, body)

    def _upsert(self, what: str, kind: str, ns: str, body: dict[str, Any]) -> Any:
        """Create the object, or replace the one of that name (keeping what the API set)."""
        api = {"deployment": self._apps, "ingress": self._networking}.get(kind, self._core)
        name = body["metadata"]["name"]
        made = self._call(what, getattr(api, f"create_namespaced_{kind}"), ns, body, ok=(409,))
        if made is not None:
            return made
        old = self._must(what, getattr(api, f"read_namespaced_{kind}"), name, ns)
        body["metadata"]["resourceVersion"] = old.metadata.resource_version
        if kind == "service":  # the cluster IP is immutable; keep the node ports users know
            body["spec"]["clusterIP"] = old.spec.cluster_ip
            known = {p.port: p.node_port for p in old.spec.ports or [] if p.node_port}
            if body["spec"]["type"] != "ClusterIP":
                for port in body["spec"]["ports"]:
                    if port["port"] in known:
                        port["nodePort"] = known[port["port"]]
        return self._must(what, getattr(api, f"replace_namespaced_{kind}"), name, ns, body)

    def _public_address(self, service: Any, port: int) -> tuple[str | None, int]:
        """Where a port of a NodePort/LoadBalancer service is reached from outside."""
        if service.spec.type == "LoadBalancer":
            ingress = (service.status.load_balancer.ingress if service.status
                       and service.status.load_balancer else None) or []  # fmt: skip
            address = next((i.ip or i.hostname for i in ingress if i.ip or i.hostname), None)
            return address, port
        if service.spec.type == "NodePort":
            node_port = next((p.node_port for p in service.spec.ports or [] if p.port == port),
                             None)  # fmt: skip
            return (self._node_address, node_port) if node_port else (None, port)
        return None, port

    def _delete_selected(self, ns: str | None, labels: Mapping[str, str],
                         kinds: Iterable[str] | None = None) -> None:  # fmt: skip
        """Delete every object (of `kinds`, default all) matching the labels, in `ns` or
        everywhere (ns None)."""
        selector = _selector(labels)
        for api, kind in self._kinds:
            if kinds is not None and kind not in kinds:
                continue
            what = f"delete {kind}s {selector}"
            # an account without the networking API (RBAC, or none served) made no Ingress
            ok = (403, 404) if kind == "ingress" else ()
            if ns is None:
                found = self._call(what, getattr(api, f"list_{kind}_for_all_namespaces"),
                                   label_selector=selector, ok=ok)  # fmt: skip
            else:
                found = self._call(what, getattr(api, f"list_namespaced_{kind}"), ns,
                                   label_selector=selector, ok=ok)  # fmt: skip
            if found is None and ok:
                continue
            if found is None:
                raise ProviderError(f"kubernetes: {what}: the API server answered nothing")
            for obj in found.items:
                self._call(what, getattr(api, f"delete_namespaced_{kind}"),
                           obj.metadata.name, obj.metadata.namespace, ok=(404,))  # fmt: skip
                if kind == "ingress":
                    self._delete_certificates(what, obj)

    def _delete_certificates(self, what: str, ingress: Any) -> None:
        """The TLS Secrets cert-manager made for an Ingress we annotated (they carry no labels
        of ours, and cert-manager leaves them behind)."""
        if CERT_MANAGER_ISSUER not in (ingress.metadata.annotations or {}):
            return
        for tls in ingress.spec.tls or []:
            if tls.secret_name:
                self._call(what, self._core.delete_namespaced_secret, tls.secret_name,
                           ingress.metadata.namespace, ok=(404,))  # fmt: skip
