"""Nodes as 1-replica Deployments: launch (idempotent: found, restarted or made), the state
from container reasons first and pod phases second, inspect, list, stop/start (scale to 0 and
back), reboot (delete the pod), resize (new requests/limits), destroy and cleanup.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

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
    ProviderError,
    QuotaExceeded,
)
from orbis.providers.kubernetes.objects import Objects
from orbis.providers.kubernetes.session import (
    LABEL_NAME,
    SSH_PORT,
    _dns,
    _image,
    _label,
    _ports,
    _quantity,
    _selector,
)

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


class Nodes(Objects):
    """The provider interface's verbs on nodes."""

    def prepare(self, infrastructure_id: str) -> None:
        self._ensure_namespace(infrastructure_id)

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

    def inspect(self, provider_id: str) -> Machine:
        return self._machine(*self._split(provider_id))

    def destroy(self, provider_id: str) -> None:
        ns, name = self._split(provider_id)
        self._delete_selected(ns, {LABEL_NAME: name})

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
