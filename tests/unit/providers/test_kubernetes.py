"""The Kubernetes provider, driving the official client over HTTP against the stand-in cluster."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest

from orbis.model.infrastructure import Compute, PortSpec, Volume
from orbis.model.states import NodeState
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    LABEL_NODE,
    NodeSpec,
    NotFound,
    ProviderAuthError,
    ProviderError,
    QuotaExceeded,
    Transient,
)
from orbis.providers.kubernetes import KubernetesProvider
from orbis.testing.standins.kubernetes import BAD_IMAGE, CRASH_IMAGE, KubernetesStandin, serve

INFRA = "0b5e6f1a-1c2d-11ef-9a3b-0242ac120002"
NS = f"orbis-{INFRA}"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOrbisTestKey orbis"
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
FAST = {"poll_interval": 0.01, "launch_timeout": 5}


@pytest.fixture
def cluster() -> Iterator[KubernetesStandin]:
    with serve(pending_reads=3) as standin:
        yield standin


def make(cluster: KubernetesStandin, installation: str | None = "inst-1", **options: Any
         ) -> KubernetesProvider:  # fmt: skip
    auth = {"id": "k8s", "type": "Kubernetes", "host": cluster.url, "token": cluster.token}
    auth |= {k: v for k, v in options.items() if k == "namespace"}
    provider = KubernetesProvider(auth, options={**FAST, **options})
    provider.installation = installation
    return provider


@pytest.fixture
def provider(cluster: KubernetesStandin) -> KubernetesProvider:
    return make(cluster)


def node(name: str = "web", vm_id: int = 0, *, infra: str = INFRA, public: bool = False,
         image: str = "docker://ghcr.io/orbis/node:1", **compute: Any) -> NodeSpec:  # fmt: skip
    spec = Compute(name=name, type="tosca.nodes.indigo.Compute", image=image, public=public,
                   **compute)  # fmt: skip
    return NodeSpec(
        infrastructure_id=infra, vm_id=vm_id, name=name, public=public, ssh_public_key=KEY,
        num_cpus=spec.num_cpus, mem_size=spec.mem_size, ports=tuple(spec.ports), compute=spec,
    )  # fmt: skip


def only(cluster: KubernetesStandin, plural: str, ns: str = NS) -> dict[str, Any]:
    names = cluster.names(plural, ns)
    assert len(names) == 1, names
    return cluster.get(plural, ns, names[0])


# -- launch -------------------------------------------------------------------------------------


def test_launch_makes_a_labelled_deployment_with_the_node_resources(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    machine = provider.launch(node("Web_Server", 3, num_cpus=1.5, mem_size=2 * 2**30,
                                   num_gpus=1, disk_size=20 * 2**30))  # fmt: skip
    namespace = cluster.get("namespaces", "", NS)
    assert namespace["metadata"]["labels"][LABEL_INFRASTRUCTURE] == INFRA
    assert namespace["metadata"]["labels"][LABEL_INSTALLATION] == "inst-1"
    deployment = only(cluster, "deployments")
    name = deployment["metadata"]["name"]
    assert DNS_1035.match(name) and name.startswith("web-server-3-")
    for labels in (deployment["metadata"]["labels"],
                   deployment["spec"]["template"]["metadata"]["labels"]):  # fmt: skip
        assert labels[LABEL_INFRASTRUCTURE] == INFRA
        assert labels[LABEL_NODE] == "Web_Server.3"
        assert labels[LABEL_INSTALLATION] == "inst-1"
    assert deployment["spec"]["replicas"] == 1
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/orbis/node:1"  # docker:// dropped
    resources = container["resources"]
    assert resources["requests"] == {"cpu": "1500m", "memory": str(2 * 2**30),
                                     "ephemeral-storage": str(20 * 2**30)}  # fmt: skip
    assert resources["limits"]["nvidia.com/gpu"] == "1"
    assert resources["limits"]["cpu"] == "1500m"
    assert machine.provider_id == f"{NS}/{name}"
    assert machine.infrastructure_id == INFRA and machine.vm_id == 3


def test_ssh_key_is_a_secret_mounted_as_roots_authorized_keys(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    machine = provider.launch(node())
    secret = only(cluster, "secrets")
    assert base64.b64decode(secret["data"]["authorized_keys"]).decode() == KEY + "\n"
    pod = only(cluster, "deployments")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "secret" in v)
    assert volume["secret"] == {"secretName": secret["metadata"]["name"], "defaultMode": 0o600}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    assert (mount["mountPath"], mount["subPath"]) == ("/root/.ssh/authorized_keys",
                                                      "authorized_keys")  # fmt: skip
    assert pod["automountServiceAccountToken"] is False
    assert machine.ssh_user == "root"


def test_launch_waits_until_the_pod_runs_and_has_an_ip(cluster: KubernetesStandin) -> None:
    provider = make(cluster)
    machine = provider.launch(node())
    assert machine.state == NodeState.RUNNING
    pod = only(cluster, "pods")
    assert machine.private_ip == pod["status"]["podIP"] and machine.private_ip.startswith("10.")
    pod_reads = [r for r in cluster.requests if r[0] == "GET" and r[1].endswith("/pods")]
    assert len(pod_reads) >= 3  # Pending twice, then Running


def test_launch_gives_up_with_a_transient_error(cluster: KubernetesStandin) -> None:
    cluster.pending_reads = 10_000
    provider = make(cluster, launch_timeout=0.1)
    with pytest.raises(Transient, match="still not ready"):
        provider.launch(node())


def test_launch_is_idempotent(cluster: KubernetesStandin, provider: KubernetesProvider) -> None:
    first = provider.launch(node(public=True, volumes=[Volume("disk.1", size=2**30)]))
    posts = sum(1 for method, _ in cluster.requests if method == "POST")
    second = provider.launch(node(public=True, volumes=[Volume("disk.1", size=2**30)]))
    assert second.provider_id == first.provider_id
    assert sum(1 for method, _ in cluster.requests if method == "POST") == posts + 1  # namespace
    assert len(cluster.names("deployments", NS)) == 1 and len(cluster.names("pods", NS)) == 1
    assert len(cluster.names("persistentvolumeclaims", NS)) == 1


def test_half_made_node_is_completed_by_the_next_launch(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    provider.launch(node())
    deployment = only(cluster, "deployments")["metadata"]["name"]
    with cluster._lock:  # as if the last launch died before making its Deployment
        cluster.delete("deployments", NS, deployment)
    machine = provider.launch(node())  # secret and service exist: 409 is not an error
    assert machine.state == NodeState.RUNNING
    assert len(cluster.names("secrets", NS)) == 1 and len(cluster.names("services", NS)) == 1


def test_non_container_image_url_is_not_found(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    with pytest.raises(NotFound, match="not a container image"):
        provider.launch(node(image="ost://cloud.example.org/1234"))
    assert cluster.names("deployments", NS) == []
    machine = provider.launch(node(image="ubuntu:22.04"))  # a bare image name is accepted
    assert only(cluster, "deployments")["spec"]["template"]["spec"]["containers"][0][
        "image"] == "ubuntu:22.04"  # fmt: skip
    assert machine.state == NodeState.RUNNING


# -- services -----------------------------------------------------------------------------------


def test_private_node_gets_a_cluster_ip_service(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    machine = provider.launch(node(ports=[PortSpec(8080, target=80)]))
    service = only(cluster, "services")
    assert service["spec"]["type"] == "ClusterIP"
    ports = {(p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {(8080, 80), (22, 22)}
    assert service["spec"]["selector"] == {"orbis.name": machine.provider_id.split("/")[1]}
    assert machine.public_ip is None and machine.ssh_port == 22


def test_public_node_gets_a_node_port_reached_on_the_cluster_address(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    machine = provider.launch(node(public=True, ports=[PortSpec(80), PortSpec(53, "udp")]))
    service = only(cluster, "services")
    assert service["spec"]["type"] == "NodePort"
    ports = {(p["port"], p["protocol"]): p["nodePort"] for p in service["spec"]["ports"]}
    assert set(ports) == {(80, "TCP"), (53, "UDP"), (22, "TCP")}
    assert machine.public_ip == "127.0.0.1"  # the API server's host
    assert machine.ssh_port == ports[(22, "TCP")]
    assert provider.inspect(machine.provider_id).public_ip == "127.0.0.1"


def test_public_node_as_load_balancer_waits_for_its_address(cluster: KubernetesStandin) -> None:
    provider = make(cluster, public_service="LoadBalancer")
    machine = provider.launch(node(public=True))
    assert only(cluster, "services")["spec"]["type"] == "LoadBalancer"
    assert machine.public_ip == "203.0.113.10" and machine.ssh_port == 22


def test_port_ranges_are_expanded(cluster: KubernetesStandin, provider: KubernetesProvider) -> None:
    provider.launch(node(ports=[PortSpec(9000, range_end=9002)]))
    ports = {p["port"] for p in only(cluster, "services")["spec"]["ports"]}
    assert ports == {9000, 9001, 9002, 22}


# -- volumes ------------------------------------------------------------------------------------


def test_volumes_become_claims_with_size_and_storage_class(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    provider.launch(node(volumes=[
        Volume("disk.1", index=1, size=10 * 2**30, type="ssd", mount_path="/data"),
        Volume("disk.2", index=2, volume_id="pv-existing"),
        Volume("disk.3", index=3),  # neither size nor id: ignored, as IM does
    ]))  # fmt: skip
    claims = [cluster.get("persistentvolumeclaims", NS, n)
              for n in cluster.names("persistentvolumeclaims", NS)]  # fmt: skip
    assert len(claims) == 2
    sized = next(c for c in claims if c["spec"].get("storageClassName"))
    assert sized["spec"]["storageClassName"] == "ssd"
    assert sized["spec"]["resources"]["requests"]["storage"] == str(10 * 2**30)
    assert sized["metadata"]["labels"][LABEL_INFRASTRUCTURE] == INFRA
    bound = next(c for c in claims if c is not sized)
    assert bound["spec"]["volumeName"] == "pv-existing"
    pod = only(cluster, "deployments")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/data"] == sized["metadata"]["name"] and "/mnt/disk2" in mounts
    assert only(cluster, "deployments")["spec"]["strategy"]["type"] == "Recreate"


# -- states -------------------------------------------------------------------------------------


def test_image_pull_back_off_fails_the_node_with_the_reason(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    with pytest.raises(NotFound, match="ImagePullBackOff") as err:
        provider.launch(node(image=BAD_IMAGE))
    assert BAD_IMAGE in str(err.value)
    deployment = only(cluster, "deployments")["metadata"]["name"]
    machine = provider.inspect(f"{NS}/{deployment}")
    assert machine.state == NodeState.FAILED
    assert machine.warnings and machine.warnings[0].startswith("ImagePullBackOff")


def test_crash_loop_fails_the_node(provider: KubernetesProvider) -> None:
    with pytest.raises(ProviderError, match="CrashLoopBackOff") as err:
        provider.launch(node(image=CRASH_IMAGE))
    assert not isinstance(err.value, NotFound)


@pytest.mark.parametrize(
    ("phase", "state"),
    [("Pending", NodeState.PENDING), ("Running", NodeState.RUNNING),
     ("Succeeded", NodeState.OFF), ("Failed", NodeState.FAILED),
     ("Unknown", NodeState.UNKNOWN)],
)  # fmt: skip
def test_states_follow_the_pod_phase(
    cluster: KubernetesStandin, provider: KubernetesProvider, phase: str, state: NodeState
) -> None:
    machine = provider.launch(node())
    pod = only(cluster, "pods")["metadata"]["name"]
    with cluster._lock:  # the kubelet reports a new phase
        status = cluster.objects[("pods", NS, pod)]["status"]
        status["phase"] = phase
        status["reason"], status["message"] = "Evicted", "The node was low on memory."
    inspected = provider.inspect(machine.provider_id)
    assert inspected.state == state
    if state == NodeState.FAILED:
        assert inspected.warnings == ("Evicted: The node was low on memory.",)


def test_inspect_of_a_missing_node_is_off(provider: KubernetesProvider) -> None:
    assert provider.inspect(f"{NS}/nothing-here").state == NodeState.OFF
    with pytest.raises(NotFound):
        provider.inspect("not-a-provider-id")


# -- errors -------------------------------------------------------------------------------------


def test_wrong_token_is_an_auth_error_without_the_token(cluster: KubernetesStandin) -> None:
    auth = {"type": "Kubernetes", "host": cluster.url, "token": "wrong-secret-token"}
    provider = KubernetesProvider(auth, options=FAST)
    assert provider.site == "kubernetes" and provider.name == "kubernetes"
    with pytest.raises(ProviderAuthError, match="Unauthorized") as err:
        provider.launch(node())
    assert "wrong-secret-token" not in str(err.value)


def test_basic_credentials_are_accepted() -> None:
    with serve(token="", username="admin", password="s3cret", pending_reads=1) as cluster:
        auth = {"type": "Kubernetes", "host": cluster.url, "username": "admin",
                "password": "s3cret"}  # fmt: skip
        assert KubernetesProvider(auth, options=FAST).launch(node()).state == NodeState.RUNNING
        bad = KubernetesProvider({**auth, "password": "nope"}, options=FAST)
        with pytest.raises(ProviderAuthError):
            bad.prepare(INFRA)


def test_auth_line_without_credentials_is_refused() -> None:
    with pytest.raises(ProviderAuthError):
        KubernetesProvider({"type": "Kubernetes", "host": "https://k8s.example.org:6443"})
    with pytest.raises(ProviderError, match="no host"):
        KubernetesProvider({"type": "Kubernetes", "token": "t"})


def test_claim_refused_by_quota_is_quota_exceeded(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    provider.prepare(INFRA)
    cluster.add("resourcequotas", NS, {"metadata": {"name": "storage"},
                                       "spec": {"hard": {"requests.storage": "5Gi"}}})  # fmt: skip
    with pytest.raises(QuotaExceeded, match="exceeded quota: storage"):
        provider.launch(node(volumes=[Volume("disk.1", size=10 * 2**30)]))


def test_pods_refused_by_quota_fail_the_launch(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    """The Deployment is accepted; the quota shows up later as its ReplicaFailure condition."""
    provider.prepare(INFRA)
    cluster.add("resourcequotas", NS, {"metadata": {"name": "compute"},
                                       "spec": {"hard": {"limits.cpu": "2"}}})  # fmt: skip
    provider.launch(node("a", 0, num_cpus=1.5))
    with pytest.raises(QuotaExceeded, match="exceeded quota: compute"):
        provider.launch(node("b", 1, num_cpus=1))
    assert len(cluster.names("deployments", NS)) == 2 and len(cluster.names("pods", NS)) == 1


def test_creating_into_a_namespace_being_deleted_is_transient(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    """The API refuses with a 403 (NamespaceTerminating) that is no credential problem."""
    provider.prepare(INFRA)
    cluster.delete("namespaces", "", NS)  # as a cleanup still running would leave it
    with pytest.raises(Transient, match="is being terminated"):
        provider.launch(node())
    assert NS in cluster.names("namespaces")  # the namespace controller is not done yet
    while NS in cluster.names("namespaces"):  # ...until it is: then a retry goes through
        cluster.read("namespaces", "", NS)
    assert provider.launch(node()).state == NodeState.RUNNING


def test_an_empty_answer_where_one_is_needed_is_a_provider_error(
    provider: KubernetesProvider,
) -> None:
    """An explicit error, not an `assert` (gone under `python -O`)."""
    with pytest.raises(ProviderError, match="read pod x: the API server answered nothing"):
        provider._must("read pod x", lambda **_: None)


def test_server_errors_are_transient(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    cluster.fail_next = [500]
    with pytest.raises(Transient, match="etcdserver: request timed out"):
        provider.prepare(INFRA)
    provider.prepare(INFRA)  # the next call goes through
    assert cluster.names("namespaces") == [NS]


def test_unreachable_api_server_is_transient() -> None:
    with serve() as cluster:
        url = cluster.url
    auth = {"type": "Kubernetes", "host": url, "token": "t"}
    provider = KubernetesProvider(auth, options={**FAST, "request_timeout": 2})
    with pytest.raises(Transient, match="unreachable"):
        provider.list_owned()


# -- lifecycle ----------------------------------------------------------------------------------


def test_destroy_removes_the_nodes_objects_only(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    gone = provider.launch(node("a", 0, public=True, volumes=[Volume("disk.1", size=2**30)]))
    kept = provider.launch(node("b", 1, volumes=[Volume("disk.1", size=2**30)]))
    provider.destroy(gone.provider_id)
    for plural in ("deployments", "services", "secrets", "persistentvolumeclaims", "pods"):
        names = cluster.names(plural, NS)
        assert len(names) == 1 and names[0].startswith(kept.provider_id.split("/")[1]), plural
    provider.destroy(gone.provider_id)  # already gone: not an error
    assert provider.inspect(gone.provider_id).state == NodeState.OFF
    assert provider.inspect(kept.provider_id).state == NodeState.RUNNING


def test_cleanup_deletes_the_namespace_and_leaves_nothing(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    other = "7c1d2e3f-1c2d-11ef-9a3b-0242ac120002"
    provider.launch(node("a", 0, public=True, volumes=[Volume("disk.1", size=2**30)]))
    provider.launch(node("b", 1))
    provider.launch(node("c", 0, infra=other))
    provider.cleanup(INFRA)
    assert cluster.names("namespaces") == [f"orbis-{other}"]
    assert all(key[1] != NS for key in cluster.objects)
    provider.cleanup(INFRA)  # again: nothing left, no error
    provider.cleanup(other)
    assert cluster.objects == {}


def test_cleanup_leaves_a_namespace_it_did_not_make(cluster: KubernetesStandin) -> None:
    cluster.add("namespaces", "", {"metadata": {"name": NS}})  # made by someone else
    provider = make(cluster)
    provider.launch(node())
    provider.cleanup(INFRA)
    assert cluster.names("namespaces") == [NS]
    assert [k for k in cluster.objects if k[1] == NS] == []


def test_shared_namespace_from_the_auth_line(cluster: KubernetesStandin) -> None:
    cluster.add("namespaces", "", {"metadata": {"name": "team"}})
    provider = make(cluster, namespace="team")
    other = "7c1d2e3f-1c2d-11ef-9a3b-0242ac120002"
    mine = provider.launch(node("web", 0))
    theirs = provider.launch(node("web", 0, infra=other))  # same node name, another infra
    assert mine.provider_id != theirs.provider_id
    assert mine.provider_id.startswith("team/") and cluster.names("namespaces") == ["team"]
    provider.cleanup(INFRA)
    assert cluster.names("namespaces") == ["team"]
    assert cluster.names("deployments", "team") == [theirs.provider_id.split("/")[1]]
    assert [m.infrastructure_id for m in provider.list_owned()] == [other]


def test_list_owned_sees_only_this_installations_nodes(cluster: KubernetesStandin) -> None:
    ours, theirs = make(cluster, "inst-1"), make(cluster, "inst-2")
    machine = ours.launch(node("a", 0, public=True))
    theirs.launch(node("b", 0, infra="7c1d2e3f-1c2d-11ef-9a3b-0242ac120002"))
    owned = ours.list_owned()
    assert [m.provider_id for m in owned] == [machine.provider_id]
    assert owned[0].state == NodeState.RUNNING and owned[0].private_ip == machine.private_ip
    assert owned[0].public_ip == "127.0.0.1" and owned[0].vm_id == 0
    assert ours.owned_infrastructures() == {INFRA}
    assert len(make(cluster, None).list_owned()) == 2  # no installation: every Orbis node


def test_stop_start_and_reboot(cluster: KubernetesStandin, provider: KubernetesProvider) -> None:
    machine = provider.launch(node())
    provider.stop(machine.provider_id)
    assert only(cluster, "deployments")["spec"]["replicas"] == 0
    assert provider.inspect(machine.provider_id).state == NodeState.STOPPED
    provider.start(machine.provider_id)
    assert only(cluster, "deployments")["spec"]["replicas"] == 1
    provider.stop(machine.provider_id)
    assert provider.launch(node()).state == NodeState.RUNNING  # launching again starts it
    assert only(cluster, "deployments")["spec"]["replicas"] == 1
    first_pod = only(cluster, "pods")["metadata"]["name"]
    provider.reboot(machine.provider_id)
    assert only(cluster, "pods")["metadata"]["name"] != first_pod  # a new pod took its place
    with pytest.raises(NotFound):
        provider.stop(f"{NS}/nothing-here")


def test_alter_gives_the_node_new_resources(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    machine = provider.launch(node(num_cpus=1, mem_size=2**30, num_gpus=1))
    old_pod = only(cluster, "pods")["metadata"]["name"]
    provider.alter(machine.provider_id, num_cpus=4, mem_size=None)
    resources = only(cluster, "deployments")["spec"]["template"]["spec"]["containers"][0][
        "resources"]  # fmt: skip
    assert resources["limits"] == {"cpu": "4000m", "memory": str(2**30), "nvidia.com/gpu": "1"}
    assert resources["requests"]["cpu"] == "4000m"
    assert only(cluster, "pods")["metadata"]["name"] != old_pod


def test_quotas_come_from_the_namespaces_resource_quota(cluster: KubernetesStandin) -> None:
    cluster.add("namespaces", "", {"metadata": {"name": "team"}})
    cluster.add("resourcequotas", "team", {"metadata": {"name": "compute"}, "spec": {"hard": {
        "limits.cpu": "8", "limits.memory": "16Gi", "pods": "10",
        "persistentvolumeclaims": "4", "requests.storage": "100Gi"}}})  # fmt: skip
    provider = make(cluster, namespace="team")
    provider.launch(node(num_cpus=2, mem_size=4 * 2**30, volumes=[Volume("d", size=10 * 2**30)]))
    quotas = provider.quotas()
    assert (quotas["cores"].used, quotas["cores"].limit) == (2, 8)
    assert (quotas["ram"].used, quotas["ram"].limit) == (4096, 16384)
    assert (quotas["instances"].used, quotas["instances"].free) == (1, 9)
    assert (quotas["volumes"].used, quotas["volume_storage"].used) == (1, 10)
    assert make(cluster).quotas() == {}  # no quota in `default`


def test_alter_keeps_the_nodes_disk(cluster: KubernetesStandin, provider: KubernetesProvider
                                    ) -> None:  # fmt: skip
    machine = provider.launch(node(num_cpus=1, mem_size=2**30, disk_size=20 * 2**30))
    provider.alter(machine.provider_id, num_cpus=None, mem_size=2 * 2**30)
    resources = only(cluster, "deployments")["spec"]["template"]["spec"]["containers"][0][
        "resources"]  # fmt: skip
    for kind in ("requests", "limits"):  # a resize changes cpu and memory, nothing else
        assert resources[kind] == {"cpu": "1000m", "memory": str(2 * 2**30),
                                   "ephemeral-storage": str(20 * 2**30)}  # fmt: skip
