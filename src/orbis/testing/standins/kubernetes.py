"""A stand-in Kubernetes API server: just enough of core/v1, apps/v1 and networking.k8s.io/v1
for the provider.

Stateful and in memory. It checks the bearer token (or basic credentials), keeps namespaces,
pods, deployments, services, PVCs, secrets, configmaps, resource quotas and ingresses, and
answers in the shapes recorded in `kubernetes_fixtures/` (server-filled fields, status objects,
errors). Some of the API's validation is played: an Ingress needs a pathType, absolute paths,
DNS-name hosts and a backend port (422 Invalid), a Secret's `data` must be base64 (400), and
the plurals in `forbidden` are refused as RBAC would (403). It also plays the controllers the
provider relies on: a Deployment gets its pods (and
`ReplicaFailure` when a quota refuses them), creating into a namespace still being deleted
is refused (403, NamespaceTerminating), a pod turns Running with an IP after
`pending_reads` reads (or ends in ImagePullBackOff / CrashLoopBackOff for the images named so),
a LoadBalancer service gets an ingress address, and deleting a namespace deletes its content.
Besides the API, `GET /files/<name>` serves the bytes in `files` (a web server holding the
config files an app downloads).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from orbis.testing.standins import allowed

FIXTURES = Path(__file__).with_name("kubernetes_fixtures")
BAD_IMAGE = "registry.example/no-such-image"  # pulls fail: ImagePullBackOff
CRASH_IMAGE = "registry.example/crashes"  # starts, exits, restarts: CrashLoopBackOff

# plural -> (kind, API group path, namespaced)
KINDS = {
    "namespaces": ("Namespace", "api/v1", False),
    "pods": ("Pod", "api/v1", True),
    "services": ("Service", "api/v1", True),
    "secrets": ("Secret", "api/v1", True),
    "configmaps": ("ConfigMap", "api/v1", True),
    "persistentvolumeclaims": ("PersistentVolumeClaim", "api/v1", True),
    "resourcequotas": ("ResourceQuota", "api/v1", True),
    "deployments": ("Deployment", "apis/apps/v1", True),
    "ingresses": ("Ingress", "apis/networking.k8s.io/v1", True),
}
FIXTURE_NAMES = {"persistentvolumeclaims": "pvc", "ingresses": "ingress"}  # else plural - "s"
# Objects answered with a Status on DELETE (the others are answered with the deleted object)
STATUS_ON_DELETE = {"deployments", "secrets", "configmaps", "resourcequotas", "ingresses"}
SERVER_METADATA = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp"}
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = re.compile(rf"(\*\.)?{_DNS_LABEL}(\.{_DNS_LABEL})*")

Key = tuple[str, str, str]  # (plural, namespace or "", name)


def fixture(name: str) -> dict[str, Any]:
    """A recorded exchange: {"request": ..., "status": ..., "body": ...}."""
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def _fill(value: Any, **fields: Any) -> Any:
    """The fixture body with {placeholders} in its strings replaced."""
    if isinstance(value, dict):
        return {k: _fill(v, **fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, **fields) for v in value]
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: str(fields.get(m[1], m[0])), value)
    return value


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386): maps merge, None deletes, lists are replaced."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


_UNITS = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_UNITS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(text: str | int | float) -> float:
    """A Kubernetes quantity ("500m", "2Gi", "1.5") as a number."""
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text).strip())
    if not match:
        raise ValueError(f"bad quantity {text!r}")
    return float(match[1]) * _UNITS.get(match[2], 1)


def _number(value: float) -> str:
    """A quantity as the API writes it back ("2", "1.5", "10737418240"; never "1e+10")."""
    return str(int(value)) if value == int(value) else f"{value:.3f}".rstrip("0")


def _base64_error(value: Any) -> int | None:
    """Where a Secret's data value stops being base64 (as Go decodes []byte: line breaks are
    skipped, padding is required); None when it is base64."""
    text = re.sub(r"[\r\n]", "", value) if isinstance(value, str) else None
    if text is None:
        return 0
    bad = re.search(r"[^A-Za-z0-9+/=]", text)
    if bad:
        return bad.start()
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        return len(text) - len(text) % 4
    return None


def _ingress_problem(spec: dict[str, Any]) -> tuple[str, str, str] | None:
    """(field, detail, cause) of the first thing the API's validation refuses in an Ingress."""
    invalid, required = "FieldValueInvalid", "FieldValueRequired"
    for i, rule in enumerate(spec.get("rules") or []):
        host = rule.get("host")
        if host is not None and re.fullmatch(r"[0-9.]+|.*:.*", host):
            detail = f'Invalid value: "{host}": must be a DNS name, not an IP address'
            return f"spec.rules[{i}].host", detail, invalid
        if host is not None and (not _SUBDOMAIN.fullmatch(host) or len(host) > 253):
            detail = (f'Invalid value: "{host}": a lowercase RFC 1123 subdomain must consist '
                      "of lower case alphanumeric characters, '-' or '.'")  # fmt: skip
            return f"spec.rules[{i}].host", detail, invalid
        for j, path in enumerate((rule.get("http") or {}).get("paths") or []):
            at, kind = f"spec.rules[{i}].http.paths[{j}]", path.get("pathType")
            if kind is None:
                return f"{at}.pathType", "Required value: pathType must be specified", required
            if kind not in ("Exact", "Prefix", "ImplementationSpecific"):
                detail = (f'Unsupported value: "{kind}": supported values: "Exact", '
                          '"ImplementationSpecific", "Prefix"')  # fmt: skip
                return f"{at}.pathType", detail, "FieldValueNotSupported"
            value = str(path.get("path", ""))
            if kind != "ImplementationSpecific" and not value.startswith("/"):
                return f"{at}.path", f'Invalid value: "{value}": must be an absolute path', invalid
            service = (path.get("backend") or {}).get("service") or {}
            if not service.get("name"):
                return f"{at}.backend.service.name", "Required value", required
            port = service.get("port") or {}
            if not port.get("number") and not port.get("name"):
                detail = "Invalid value: port name or number is required"
                return f"{at}.backend.service.port", detail, invalid
    return None


def _selected(labels: dict[str, str], selector: str | None) -> bool:
    """Whether labels match a label selector (=, ==, !=, key, !key)."""
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = re.split("==?", term, maxsplit=1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class ApiError(Exception):
    def __init__(self, status_fixture: str, **fields: Any) -> None:
        recorded = fixture(status_fixture)
        self.code = int(recorded["status"])
        self.body = _fill(recorded["body"], **fields)
        super().__init__(self.body.get("message", ""))


class KubernetesStandin:
    """The cluster's state; `serve()` puts an API server in front of it."""

    def __init__(
        self,
        *,
        token: str = "standin-token",
        username: str | None = None,
        password: str | None = None,
        pending_reads: int = 2,
    ) -> None:
        self.token, self.username, self.password = token, username, password
        self.pending_reads = pending_reads  # reads of a pod (or LB service) before it is up
        self.objects: dict[Key, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request served
        self.files: dict[str, bytes] = {}  # served at /files/<name>, outside the API
        self.fail_next: list[int] = []  # answer the next requests with these codes (500...)
        self.forbidden: set[str] = set()  # plurals RBAC keeps from the account (403)
        self._reads: dict[Key, int] = {}
        self._lock = threading.RLock()
        self._ips = itertools.count(10)
        self._node_ports = itertools.count(30080)
        self._version = itertools.count(1000)
        self.url = ""

    # -- what tests look at -------------------------------------------------------------------

    def names(self, plural: str, namespace: str = "") -> list[str]:
        with self._lock:
            return sorted(n for (p, ns, n) in self.objects if p == plural and ns == namespace)

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.objects[(plural, namespace, name)])

    def all_of(self, plural: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(o) for (p, _, _), o in self.objects.items() if p == plural]

    def add(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create an object as an administrator would (a ResourceQuota, a namespace...)."""
        with self._lock:
            return self.create(plural, namespace, body)

    # -- the API ------------------------------------------------------------------------------

    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        kind, group, _ = KINDS[plural]
        name = body.get("metadata", {}).get("name") or ""
        key = (plural, namespace, name)
        if key in self.objects:
            raise ApiError("status_409", plural=plural, name=name)
        if namespace and ("namespaces", "", namespace) not in self.objects:
            raise ApiError("status_404", plural="namespaces", name=namespace)
        phase = self.objects.get(("namespaces", "", namespace), {}).get("status", {}).get("phase")
        if namespace and phase == "Terminating":  # the NamespaceLifecycle admission plug-in
            raise ApiError("status_403_terminating", plural=plural, name=name, namespace=namespace)
        template = fixture(FIXTURE_NAMES.get(plural, plural.rstrip("s")))
        obj = _merge(template["body"], body)
        obj["apiVersion"], obj["kind"] = group.removeprefix("apis/").removeprefix("api/"), kind
        meta = obj["metadata"]
        meta.update(name=name, uid=str(uuid.uuid4()), resourceVersion=str(next(self._version)))
        if namespace:
            meta["namespace"] = namespace
        else:
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        self._validate(plural, obj)
        self._admit(plural, namespace, obj)
        if plural == "services":
            self._allocate(obj)
        self.objects[key] = obj
        if plural == "deployments":
            self._reconcile(namespace, name)
        return obj

    def read(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        key = (plural, namespace, name)
        if key not in self.objects:
            raise ApiError("status_404", plural=plural, name=name)
        self._reads[key] = self._reads.get(key, 0) + 1
        obj = self.objects[key]
        if plural == "namespaces" and obj["status"]["phase"] == "Terminating":
            if self._reads[key] > 1:  # the namespace controller has emptied it: it goes
                del self.objects[key]
        elif plural == "pods":
            self._progress_pod(key)
        elif plural == "services":
            self._progress_service(key)
        elif plural == "deployments":
            self._deployment_status(namespace, name)
        elif plural == "resourcequotas":
            obj["status"] = {"hard": dict(obj["spec"]["hard"]), "used": self._used(namespace)}
        return copy.deepcopy(obj)

    def list_objects(self, plural: str, namespace: str, selector: str | None) -> dict[str, Any]:
        items = [
            self.read(p, ns, n)
            for (p, ns, n), o in list(self.objects.items())
            if p == plural and (not namespace or ns == namespace)
            and _selected(o["metadata"].get("labels") or {}, selector)
        ]  # fmt: skip
        kind, group, _ = KINDS[plural]
        version = group.removeprefix("apis/").removeprefix("api/")
        meta = {"resourceVersion": str(next(self._version))}
        return {"apiVersion": version, "kind": f"{kind}List", "metadata": meta, "items": items}

    def replace(self, plural: str, namespace: str, name: str, body: dict[str, Any]) -> Any:
        old = self.objects.get((plural, namespace, name))
        if old is None:
            raise ApiError("status_404", plural=plural, name=name)
        wanted = body.get("metadata", {}).get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise ApiError("status_409", plural=plural, name=name)
        new = copy.deepcopy(body)
        # PUT replaces the object: of the old metadata only what the server set survives
        kept = {k: v for k, v in old["metadata"].items() if k in SERVER_METADATA}
        new["metadata"] = {**kept, **new.get("metadata", {})}
        new["status"] = old.get("status", {})
        self._validate(plural, new)
        return self._store(plural, namespace, name, new)

    def patch(self, plural: str, namespace: str, name: str, body: dict[str, Any]) -> Any:
        old = self.objects.get((plural, namespace, name))
        if old is None:
            raise ApiError("status_404", plural=plural, name=name)
        new = _merge(old, body)
        self._validate(plural, new)
        return self._store(plural, namespace, name, new)

    def _validate(self, plural: str, obj: dict[str, Any]) -> None:
        """The API's checks of a body (before admission and storage)."""
        if plural == "secrets":
            for value in (obj.get("data") or {}).values():
                byte = _base64_error(value)
                if byte is not None:  # []byte fields are base64 in JSON: undecodable body
                    raise ApiError("status_400_bad_base64", byte=byte)
            # stringData is write-only: the API stores it base64-encoded in data
            for k, v in (obj.pop("stringData", None) or {}).items():
                obj.setdefault("data", {})[k] = base64.b64encode(v.encode()).decode()
        elif plural == "ingresses":
            problem = _ingress_problem(obj.get("spec") or {})
            if problem:
                field, detail, cause = problem
                raise ApiError("status_422_invalid", kind="Ingress", group="networking.k8s.io",
                               name=obj["metadata"]["name"], field=field, detail=detail,
                               cause=cause)  # fmt: skip

    def delete(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        key = (plural, namespace, name)
        obj = self.objects.get(key)
        if obj is None:
            raise ApiError("status_404", plural=plural, name=name)
        if plural == "namespaces":  # content goes now, the namespace after one more read
            for other in [k for k in self.objects if k[1] == name]:
                del self.objects[other]
            recorded = fixture("namespace_terminating")["body"]
            obj["status"] = recorded["status"]
            self._reads[key] = 0
            return copy.deepcopy(obj)
        del self.objects[key]
        if plural == "deployments":  # background cascading deletion of its pods
            for pod in self._pods_of(namespace, name):
                del self.objects[("pods", namespace, pod["metadata"]["name"])]
        elif plural == "pods":
            owner = (obj["metadata"].get("labels") or {}).get("standin/deployment")
            if owner and ("deployments", namespace, owner) in self.objects:
                self._reconcile(namespace, owner)  # the ReplicaSet replaces a deleted pod
        if plural in STATUS_ON_DELETE:
            uid = obj["metadata"]["uid"]
            return dict(_fill(fixture("status_success")["body"], name=name, plural=plural, uid=uid))
        return obj

    # -- controllers --------------------------------------------------------------------------

    def _store(self, plural: str, namespace: str, name: str, obj: dict[str, Any]) -> Any:
        obj["metadata"]["resourceVersion"] = str(next(self._version))
        if plural == "deployments":
            obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
        self.objects[(plural, namespace, name)] = obj
        if plural == "deployments":
            self._reconcile(namespace, name)
        return copy.deepcopy(obj)

    def _allocate(self, svc: dict[str, Any]) -> None:
        spec = svc.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec["clusterIP"] = f"10.96.0.{next(self._ips)}"
        spec["clusterIPs"] = [spec["clusterIP"]]
        for port in spec.get("ports", []):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port["port"])
            if spec["type"] in ("NodePort", "LoadBalancer"):
                port.setdefault("nodePort", next(self._node_ports))

    def _progress_service(self, key: Key) -> None:
        svc = self.objects[key]
        if svc["spec"].get("type") == "LoadBalancer" and self._reads[key] >= self.pending_reads:
            svc["status"] = fixture("service_load_balancer_ingress")["body"]["status"]

    def _pods_of(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        return [
            o for (p, ns, _), o in self.objects.items()
            if p == "pods" and ns == namespace
            and (o["metadata"].get("labels") or {}).get("standin/deployment") == deployment
        ]  # fmt: skip

    def _reconcile(self, namespace: str, name: str) -> None:
        """The ReplicaSet controller: pods of the current template, as many as replicas."""
        deployment = self.objects[("deployments", namespace, name)]
        template = deployment["spec"]["template"]
        digest = hashlib.sha1(json.dumps(template, sort_keys=True).encode()).hexdigest()[:9]
        pods = self._pods_of(namespace, name)
        for pod in pods:  # a new template (or fewer replicas) replaces the old pods
            if pod["metadata"]["labels"].get("pod-template-hash") != digest:
                del self.objects[("pods", namespace, pod["metadata"]["name"])]
        pods = self._pods_of(namespace, name)
        wanted = deployment["spec"].get("replicas", 1)
        for pod in pods[wanted:]:
            del self.objects[("pods", namespace, pod["metadata"]["name"])]
        conditions = [c for c in deployment["status"].get("conditions", [])
                      if c["type"] != "ReplicaFailure"]  # fmt: skip
        for _ in range(wanted - len(pods)):
            pod_name = f"{name}-{digest}-{uuid.uuid4().hex[:5]}"
            pod = _merge(fixture("pod")["body"], copy.deepcopy(template))
            pod["apiVersion"], pod["kind"] = "v1", "Pod"
            labels = {**template["metadata"].get("labels", {})}
            labels |= {"pod-template-hash": digest, "standin/deployment": name}
            pod["metadata"] = {
                "name": pod_name, "namespace": namespace, "labels": labels,
                "uid": str(uuid.uuid4()), "resourceVersion": str(next(self._version)),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                     "name": f"{name}-{digest}", "controller": True,
                                     "uid": deployment["metadata"]["uid"]}],
            }  # fmt: skip
            for status in pod["status"]["containerStatuses"]:
                status["image"] = pod["spec"]["containers"][0]["image"]
            try:
                self._admit("pods", namespace, pod)
            except ApiError as err:  # the ReplicaSet reports it on the Deployment
                recorded = fixture("deployment_replica_failure")["body"]
                conditions.append({**recorded, "message": err.body["message"]})
                break
            self.objects[("pods", namespace, pod_name)] = pod
        deployment["status"]["conditions"] = conditions

    def _deployment_status(self, namespace: str, name: str) -> None:
        deployment = self.objects[("deployments", namespace, name)]
        pods = self._pods_of(namespace, name)
        ready = sum(p["status"]["phase"] == "Running" for p in pods
                    if all(c["ready"] for c in p["status"]["containerStatuses"]))  # fmt: skip
        deployment["status"].update(
            observedGeneration=deployment["metadata"].get("generation", 1),
            replicas=len(pods), updatedReplicas=len(pods),
            readyReplicas=ready, availableReplicas=ready,
        )  # fmt: skip

    def _progress_pod(self, key: Key) -> None:
        pod = self.objects[key]
        if self._reads[key] < self.pending_reads or pod["status"].get("podIP"):
            return
        image = pod["spec"]["containers"][0]["image"]
        name = {BAD_IMAGE: "pod_image_pull_backoff", CRASH_IMAGE: "pod_crash_loop"}
        status = fixture(name.get(image, "pod_running"))["body"]["status"]
        status = _fill(status, image=image, name=key[2])
        status["podIP"] = status["podIPs"][0]["ip"] = f"10.244.1.{next(self._ips)}"
        for container in status["containerStatuses"]:
            container["image"] = image
        pod["status"] = status

    # -- quotas -------------------------------------------------------------------------------

    def _used(self, namespace: str) -> dict[str, str]:
        used: dict[str, float] = {}

        def add(key: str, amount: float) -> None:
            used[key] = used.get(key, 0) + amount

        for (plural, ns, _), obj in self.objects.items():
            if ns != namespace:
                continue
            if plural == "pods":
                add("pods", 1)
                for container in obj["spec"].get("containers", []):
                    resources = container.get("resources", {})
                    for part in ("requests", "limits"):
                        for res, value in (resources.get(part) or {}).items():
                            add(f"{part}.{res}", quantity(value))
            elif plural == "persistentvolumeclaims":
                add("persistentvolumeclaims", 1)
                storage = obj["spec"].get("resources", {}).get("requests", {}).get("storage")
                add("requests.storage", quantity(storage or 0))
            elif plural == "services":
                add("services", 1)
                if obj["spec"].get("type") == "LoadBalancer":
                    add("services.loadbalancers", 1)
        return {k: _number(v) for k, v in used.items()}

    def _admit(self, plural: str, namespace: str, obj: dict[str, Any]) -> None:
        """The ResourceQuota admission plug-in: refuse what would pass a hard limit."""
        if not namespace or plural == "resourcequotas":
            return
        quotas = [o for (p, ns, _), o in self.objects.items()
                  if p == "resourcequotas" and ns == namespace]  # fmt: skip
        if not quotas:
            return
        before = {k: quantity(v) for k, v in self._used(namespace).items()}
        key = (plural, namespace, obj["metadata"]["name"])
        self.objects[key] = obj
        try:
            after = {k: quantity(v) for k, v in self._used(namespace).items()}
        finally:
            del self.objects[key]
        for quota in quotas:
            for res, limit in quota["spec"]["hard"].items():
                if after.get(res, 0) > quantity(limit) and after.get(res, 0) > before.get(res, 0):
                    raise ApiError(
                        "status_403_quota", plural=plural, name=obj["metadata"]["name"],
                        quota=quota["metadata"]["name"],
                        requested=f"{res}={_number(after[res] - before.get(res, 0))}",
                        used=f"{res}={_number(before.get(res, 0))}", limited=f"{res}={limit}",
                    )  # fmt: skip

    # -- HTTP ---------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
               body: Any) -> tuple[int, Any]:  # fmt: skip
        with self._lock:
            self.requests.append((method, path))
            if not self._authorized(headers.get("Authorization", "")):
                return 401, fixture("status_401")["body"]
            if self.fail_next:
                return self.fail_next.pop(0), fixture("status_500")["body"]
            try:
                return self._route(method, path, query, body)
            except ApiError as err:
                return err.code, err.body

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer":
            return bool(self.token) and value == self.token
        if scheme == "Basic" and self.username:
            return base64.b64decode(value).decode() == f"{self.username}:{self.password}"
        return False

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any
               ) -> tuple[int, Any]:  # fmt: skip
        match = re.fullmatch(r"/(api/v1|apis/apps/v1|apis/networking.k8s.io/v1)/(.+)", path)
        parts = match[2].split("/") if match else []
        namespace, rest = "", parts
        if len(parts) >= 3 and parts[0] == "namespaces":
            namespace, rest = parts[1], parts[2:]
        plural = rest[0] if rest else ""
        name = rest[1] if len(rest) == 2 else None
        if not match or plural not in KINDS or len(rest) > 2 or KINDS[plural][1] != match[1]:
            raise ApiError("status_404", plural="the server could not find", name=path)
        if KINDS[plural][2] and not namespace and (name or method != "GET"):
            raise ApiError("status_404", plural=plural, name=name or "")
        if plural in self.forbidden:
            group = KINDS[plural][1].removeprefix("apis/").removeprefix("api/").rpartition("/")[0]
            raise ApiError(
                "status_403_forbidden", plural=plural, group=group,
                resource=f"{plural}.{group}" if group else plural, user="standin",
                verb="list" if method == "GET" and name is None else _VERBS.get(method, method),
                scope=f'in the namespace "{namespace}"' if namespace else "at the cluster scope",
            )  # fmt: skip
        selector = next(iter(query.get("labelSelector", [])), None)
        if method == "GET":
            if name is None:
                return 200, self.list_objects(plural, namespace, selector)
            return 200, self.read(plural, namespace, name)
        if method == "POST" and name is None:
            return 201, self.create(plural, namespace, body)
        if method == "PUT" and name:
            return 200, self.replace(plural, namespace, name, body)
        if method == "PATCH" and name:
            return 200, self.patch(plural, namespace, name, body)
        if method == "DELETE" and name:
            return 200, self.delete(plural, namespace, name)
        raise ApiError("status_404", plural=plural, name=name or "")


class _Handler(BaseHTTPRequestHandler):
    cluster: KubernetesStandin

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.command == "GET" and url.path.startswith("/files/"):
            return self._file(url.path.removeprefix("/files/"))
        body = json.loads(raw) if raw else None
        code, answer = self.cluster.handle(
            self.command, url.path, parse_qs(url.query), self.headers, body
        )
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _file(self, name: str) -> None:
        data = self.cluster.files.get(name)
        self.send_response(404 if data is None else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@contextmanager
def serve(**options: Any) -> Iterator[KubernetesStandin]:
    """A stand-in cluster behind an HTTP API server on 127.0.0.1 (its `url`), for the block."""
    cluster = KubernetesStandin(**options)
    handler = type("Handler", (_Handler,), {"cluster": cluster})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    cluster.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with allowed(f"127.0.0.1:{server.server_address[1]}"):  # a user's line names it
            yield cluster
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
