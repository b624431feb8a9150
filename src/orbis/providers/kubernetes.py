"""The Kubernetes back-end: nodes and container apps on a cluster, through the official client.

Auth line (as IM writes it): `type = Kubernetes; host = <API URL>; token = ...` (or
`username` + `password`), optional `namespace`. Without a namespace each infrastructure gets
its own, `orbis-<infrastructure id>`, and `cleanup` deletes it; with one, every object is found
(and removed) by its Orbis labels.

A node is a **1-replica Deployment** rather than a bare pod: the cluster recreates the pod when
its worker dies or when it is deleted (reboot), scaling to 0 and back gives stop/start, and a new
pod template gives alter — a bare pod can do none of these. Next to it: a Secret with the
infrastructure's public key, mounted as root's `authorized_keys` (there is no cloud-init in a
container, so `user_data` is not used and Ansible logs in as root to an image that runs sshd), a
Service for its ports plus SSH (NodePort or LoadBalancer when public, ClusterIP otherwise) and a
PVC per data volume (storage class = volume type). Every object carries the Orbis labels and
`orbis.name`, the Deployment's name, so one selector finds a node's whole set.

Container apps (`apply_app`) are a Deployment with a ConfigMap for their text files and a Secret
for their base64 ones, PVCs and Services; an app whose first published port has an endpoint URL
also gets an Ingress for that host and path. Operator options: `ingress_class` (the Ingress's
`ingressClassName`; none by default) and `cluster_issuer` (https Ingresses are annotated for
cert-manager, which then makes their TLS Secret; without it the Secret named in `tls` must
come from elsewhere, or the controller serves its default certificate).

Pitfalls kept: a quota that refuses the pods does not fail the Deployment's creation, it shows up
later as its `ReplicaFailure` condition; ImagePullBackOff / CrashLoopBackOff leave the pod
Pending/Running, so states come from container reasons first and phases second; a public NodePort
node is reached on the cluster's address at the node port given to port 22.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from orbis.model.infrastructure import ContainerApp, PortSpec, Volume
from orbis.model.states import NodeState
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    LABEL_NODE,
    LABEL_PUBLIC,
    LABEL_VM_ID,
    Machine,
    NodeSpec,
    NotFound,
    Provider,
    ProviderAuthError,
    ProviderError,
    QuotaExceeded,
    QuotaUse,
    Transient,
)

LABEL_NAME = "orbis.name"  # the Deployment a node's (or app's) objects belong to
LABEL_APP = "orbis.app"  # a container app (tosca.nodes.Container.Application)
CERT_MANAGER_ISSUER = "cert-manager.io/cluster-issuer"  # cert-manager's Ingress annotation
BASE64 = "base64"  # a config file's `encoding`: its content is base64 (mounted from a Secret)
SSH_PORT = 22

_PHASES = {
    "Pending": NodeState.PENDING,
    "Running": NodeState.RUNNING,
    "Succeeded": NodeState.OFF,
    "Failed": NodeState.FAILED,
    "Unknown": NodeState.UNKNOWN,
}
# Container waiting reasons that will not resolve by waiting
_IMAGE_FAILURES = {"ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_FAILURES = _IMAGE_FAILURES | {
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}
# ResourceQuota keys, most telling first, as IM's quota names (ram in MB, storage in GB)
_QUOTAS = {
    "limits.cpu": "cores", "requests.cpu": "cores", "cpu": "cores",
    "limits.memory": "ram", "requests.memory": "ram", "memory": "ram",
    "pods": "instances",
    "persistentvolumeclaims": "volumes",
    "requests.storage": "volume_storage",
    "requests.nvidia.com/gpu": "gpus",
    "services.loadbalancers": "floating_ips",
}  # fmt: skip
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


class KubernetesProvider(Provider):
    name = "kubernetes"

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

    # -- calls --------------------------------------------------------------------------------

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

    # -- names and labels ---------------------------------------------------------------------

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

    # -- verbs --------------------------------------------------------------------------------

    def prepare(self, infrastructure_id: str) -> None:
        self._ensure_namespace(infrastructure_id)

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

    def launch(self, spec: NodeSpec) -> Machine:
        node = f"{spec.name}.{spec.vm_id}"
        what = f"node {node} of {spec.infrastructure_id}"
        ns = self._ensure_namespace(spec.infrastructure_id)
        name = self._object_name(f"{spec.name}-{spec.vm_id}", spec.infrastructure_id)
        found = self._call(what, self._apps.read_namespaced_deployment, name, ns, ok=(404,))
        if found is None:
            self._create_node(spec, ns, name, node)
        elif found.spec.replicas == 0:  # launched before, stopped since: start it again
            self._scale(f"{ns}/{name}", 1)
        return self._wait(what, lambda: self._ready(ns, name, spec.public))

    def _create_node(self, spec: NodeSpec, ns: str, name: str, node: str) -> None:
        """The node's objects, the Deployment last: once it exists, the node is launched."""
        compute = spec.compute
        what = f"node {node} of {spec.infrastructure_id}"
        image = _image(spec.image or (compute.image if compute else None))
        labels = self._labels(
            spec.infrastructure_id, **{LABEL_NODE: node, LABEL_NAME: name,
            LABEL_VM_ID: str(spec.vm_id), LABEL_PUBLIC: str(spec.public).lower()},
        )  # fmt: skip
        key = (spec.ssh_public_key.strip() + "\n") if spec.ssh_public_key.strip() else ""
        secret = {"metadata": {"name": f"{name}-ssh", "labels": labels},
                  "stringData": {"authorized_keys": key}}  # fmt: skip
        self._call(what, self._core.create_namespaced_secret, ns, secret, ok=(409,))
        mounts = [{"name": "ssh", "mountPath": "/root/.ssh/authorized_keys",
                   "subPath": "authorized_keys", "readOnly": True}]  # fmt: skip
        volumes: list[dict[str, Any]] = [
            {"name": "ssh", "secret": {"secretName": f"{name}-ssh", "defaultMode": 0o600}}
        ]
        for volume in compute.volumes if compute else []:
            claim = self._claim(what, ns, name, labels, volume)
            if claim:
                volumes.append({"name": claim, "persistentVolumeClaim": {"claimName": claim}})
                mount_path = volume.mount_path or f"/mnt/disk{volume.index}"
                mounts.append({"name": claim, "mountPath": mount_path})
        ports = _ports(spec.ports or (compute.ports if compute else ()))
        if all(port != SSH_PORT for port, _, _ in ports):
            ports.append((SSH_PORT, SSH_PORT, "TCP"))
        kind = self._public_service if spec.public else "ClusterIP"
        self._service(what, ns, name, labels, {LABEL_NAME: name}, ports, kind)
        cpus = spec.num_cpus or (compute.num_cpus if compute else None)
        memory = spec.mem_size or (compute.mem_size if compute else None)
        container = {
            "name": "node",
            "image": image,
            "resources": self._resources(cpus, memory, compute.num_gpus if compute else None,
                                         compute.gpu_vendor if compute else None,
                                         compute.disk_size if compute else None),
            "ports": [{"containerPort": t, "protocol": proto} for _, t, proto in ports],
            "volumeMounts": mounts,
        }  # fmt: skip
        pod = {"hostname": _dns(spec.hostname or f"{spec.name}-{spec.vm_id}"),
               "containers": [container], "volumes": volumes,
               "automountServiceAccountToken": False}  # fmt: skip
        self._deployment(what, ns, name, labels, pod, replicas=1, recreate=True)

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

    def _ready(self, ns: str, name: str, public: bool) -> Machine | None:
        """The machine once it has its addresses; a typed error if it never will."""
        machine = self._machine(ns, name)
        if machine.state == NodeState.FAILED:
            reason = "; ".join(machine.warnings) or "failed"
            text = f"kubernetes: node {ns}/{name}: {reason}"
            if "exceeded quota" in reason:
                raise QuotaExceeded(text)
            if any(r in reason for r in _IMAGE_FAILURES):
                raise NotFound(text)
            raise ProviderError(text)
        up = machine.state == NodeState.RUNNING and machine.private_ip
        return machine if up and (not public or machine.public_ip) else None

    def _machine(self, ns: str, name: str) -> Machine:
        what = f"node {ns}/{name}"
        deployment = self._call(what, self._apps.read_namespaced_deployment, name, ns, ok=(404,))
        if deployment is None:
            return Machine(provider_id=f"{ns}/{name}", state=NodeState.OFF)
        pods = self._must(what, self._core.list_namespaced_pod, ns,
                          label_selector=_selector({LABEL_NAME: name})).items  # fmt: skip
        service = self._call(what, self._core.read_namespaced_service, name, ns, ok=(404,))
        return self._to_machine(deployment, pods, service)

    def _to_machine(self, deployment: Any, pods: list[Any], service: Any) -> Machine:
        labels = deployment.metadata.labels or {}
        ns, name = deployment.metadata.namespace, deployment.metadata.name
        state, reasons = NodeState.PENDING, []
        for condition in (deployment.status.conditions if deployment.status else None) or []:
            if condition.type == "ReplicaFailure" and condition.status == "True":
                state, reasons = NodeState.FAILED, [condition.message or condition.reason]
        live = [p for p in pods if not p.metadata.deletion_timestamp]
        pod = live[0] if live else None
        if pod is not None and state != NodeState.FAILED:
            state, reasons = _pod_state(pod)
        elif pod is None and deployment.spec.replicas == 0:
            state = NodeState.STOPPED
        private_ip = pod.status.pod_ip if pod is not None and pod.status else None
        public_ip, ssh_port = None, SSH_PORT
        if labels.get(LABEL_PUBLIC) == "true" and service is not None:
            public_ip, ssh_port = self._public_address(service, SSH_PORT)
        vm_id = labels.get(LABEL_VM_ID, "")
        return Machine(
            provider_id=f"{ns}/{name}",
            state=state,
            private_ip=private_ip,
            public_ip=public_ip,
            ssh_user="root",  # the key is root's authorized_keys
            ssh_port=ssh_port,
            infrastructure_id=labels.get(LABEL_INFRASTRUCTURE),
            vm_id=int(vm_id) if vm_id.isdigit() else None,
            warnings=tuple(reasons),
        )

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

    def inspect(self, provider_id: str) -> Machine:
        return self._machine(*self._split(provider_id))

    def destroy(self, provider_id: str) -> None:
        ns, name = self._split(provider_id)
        self._delete_selected(ns, {LABEL_NAME: name})

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

    def cleanup(self, infrastructure_id: str) -> None:
        labels = {LABEL_INFRASTRUCTURE: _label(infrastructure_id)}
        if self._fixed_namespace:
            self._delete_selected(self._fixed_namespace, labels)
            return
        # apps may live in namespaces of their own choosing: remove them there first
        self._delete_selected(None, labels)
        ns = self.namespace(infrastructure_id)
        what = f"cleanup of {infrastructure_id}"
        found = self._call(what, self._core.read_namespace, ns, ok=(404,))
        owner = (found.metadata.labels or {}).get(LABEL_INFRASTRUCTURE) if found else None
        if owner != labels[LABEL_INFRASTRUCTURE]:
            return  # not ours (or gone): leave the namespace alone
        self._call(what, self._core.delete_namespace, ns, ok=(404,))

        def gone() -> bool | None:
            return self._call(what, self._core.read_namespace, ns, ok=(404,)) is None or None

        # namespaces go asynchronously: wait, so a new deployment of the same id can follow
        self._wait(what, gone)

    def list_owned(self) -> list[Machine]:
        labels = {LABEL_NODE: ""}
        if self.installation:
            labels[LABEL_INSTALLATION] = _label(self.installation)
        selector, ns = _selector(labels), self._fixed_namespace
        found = []
        for api, kind in ((self._apps, "deployment"), (self._core, "pod"),
                          (self._core, "service")):  # fmt: skip
            if ns:
                call = getattr(api, f"list_namespaced_{kind}")
                items = self._must(f"list {kind}s", call, ns, label_selector=selector).items
            else:
                call = getattr(api, f"list_{kind}_for_all_namespaces")
                items = self._must(f"list {kind}s", call, label_selector=selector).items
            found.append(items)
        deployments, pods, services = found

        def key(obj: Any) -> tuple[str, str]:
            return obj.metadata.namespace, (obj.metadata.labels or {}).get(LABEL_NAME, "")

        services_by = {key(s): s for s in services}
        return [
            self._to_machine(d, [p for p in pods if key(p) == key(d)], services_by.get(key(d)))
            for d in deployments
        ]

    def _scale(self, provider_id: str, replicas: int) -> None:
        ns, name = self._split(provider_id)
        body = {"spec": {"replicas": replicas}}
        self._call(f"scale {provider_id}", self._apps.patch_namespaced_deployment, name, ns, body,
                   _content_type="application/merge-patch+json")  # fmt: skip

    def stop(self, provider_id: str) -> None:
        self._scale(provider_id, 0)

    def start(self, provider_id: str) -> None:
        self._scale(provider_id, 1)

    def reboot(self, provider_id: str) -> None:
        """Delete the pod: the Deployment starts a new one (a container has no reboot)."""
        ns, name = self._split(provider_id)
        what = f"reboot {provider_id}"
        pods = self._must(what, self._core.list_namespaced_pod, ns,
                          label_selector=_selector({LABEL_NAME: name}))  # fmt: skip
        for pod in pods.items:
            self._call(what, self._core.delete_namespaced_pod, pod.metadata.name, ns, ok=(404,))

    def alter(self, provider_id: str, num_cpus: float | None, mem_size: int | None) -> None:
        """New requests/limits: the Deployment replaces the pod with one of the new size."""
        ns, name = self._split(provider_id)
        what = f"resize {provider_id}"
        deployment = self._must(what, self._apps.read_namespaced_deployment, name, ns)
        container = deployment.spec.template.spec.containers[0]
        old = container.resources.limits if container.resources else None
        old = old or {}
        cpus = num_cpus or (_quantity(old["cpu"]) if "cpu" in old else None)
        memory = mem_size or (int(_quantity(old["memory"])) if "memory" in old else None)
        resources = self._resources(cpus, memory)
        # everything else the node asked for (GPUs, its disk) stays as it was
        for kind, was in (("limits", old), ("requests", container.resources.requests
                                              if container.resources else None)):  # fmt: skip
            kept = {k: v for k, v in (was or {}).items() if k not in ("cpu", "memory")}
            resources.setdefault(kind, {}).update(kept)
        container.resources = client.V1ResourceRequirements.from_dict(resources)
        self._must(what, self._apps.replace_namespaced_deployment, name, ns, deployment)

    def quotas(self) -> dict[str, QuotaUse]:
        """The ResourceQuotas of the site's namespace (or `default`), as IM's quota names."""
        ns = self._fixed_namespace or "default"
        found = self._must("quotas", self._core.list_namespaced_resource_quota, ns).items
        out: dict[str, QuotaUse] = {}
        for key, name in _QUOTAS.items():
            for quota in found:
                hard = (quota.status.hard if quota.status else None) or quota.spec.hard or {}
                used = (quota.status.used if quota.status else None) or {}
                if key in hard and name not in out:
                    scale = MB if name == "ram" else GB if name == "volume_storage" else 1
                    out[name] = QuotaUse(used=_quantity(used.get(key, 0)) / scale,
                                         limit=_quantity(hard[key]) / scale)  # fmt: skip
        return out

    # -- container apps (tosca.nodes.Container.Application) -----------------------------------

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


def _pod_state(pod: Any) -> tuple[NodeState, list[str]]:
    """The state of a pod: container reasons that will not resolve first, then the phase."""
    status = pod.status
    reasons = []
    for container in (status.container_statuses if status else None) or []:
        waiting = container.state.waiting if container.state else None
        if waiting and waiting.reason in _FAILURES:
            reasons.append(f"{waiting.reason}: {waiting.message or ''}".rstrip(": "))
    if reasons:
        return NodeState.FAILED, reasons
    phase = status.phase if status else None
    state = _PHASES.get(phase or "Pending", NodeState.UNKNOWN)
    if state == NodeState.FAILED and status and (status.reason or status.message):
        reasons.append(f"{status.reason or ''}: {status.message or ''}".strip(": "))
    return state, reasons
