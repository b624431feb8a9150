"""Container apps (tosca.nodes.Container.Application) on the stand-in cluster."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from orbis.model.infrastructure import ContainerApp, PortSpec, Volume
from orbis.providers.base import LABEL_INFRASTRUCTURE, NotFound, ProviderError, QuotaExceeded
from orbis.providers.kubernetes import LABEL_APP, KubernetesProvider
from orbis.testing.standins.kubernetes import KubernetesStandin, serve

INFRA = "0b5e6f1a-1c2d-11ef-9a3b-0242ac120002"
NS = f"orbis-{INFRA}"


@pytest.fixture
def cluster() -> Iterator[KubernetesStandin]:
    with serve(pending_reads=2) as standin:
        yield standin


@pytest.fixture
def provider(cluster: KubernetesStandin) -> KubernetesProvider:
    auth = {"id": "k8s", "type": "Kubernetes", "host": cluster.url, "token": cluster.token}
    return KubernetesProvider(auth, options={"poll_interval": 0.01, "launch_timeout": 5})


def jupyter(count: int = 2, **more: object) -> ContainerApp:
    fields: dict[str, object] = {
        "name": "jupyter_hub", "type": "tosca.nodes.Container.Application.Docker",
        "image": "docker://jupyter/base-notebook:2024", "count": count, "num_cpus": 0.5,
        "mem_size": 512 * 2**20, "environment": {"MODE": "lab,dev"},
        "command": ["start-notebook.sh", "--port=8888"],
        "publish_ports": [PortSpec(8888)], "expose_ports": [PortSpec(9090, target=90)],
        "config_files": [{"path": "/etc/jupyter/config.py", "content": "c.Lab = True\n"}],
        "volumes": [("work_disk", "/home/jovyan/work")],
    }  # fmt: skip
    fields.update(more)
    return ContainerApp(**fields)  # type: ignore[arg-type]


def objects(cluster: KubernetesStandin, plural: str) -> list[dict]:
    return [cluster.get(plural, NS, n) for n in cluster.names(plural, NS)]


def test_apply_app_makes_deployment_services_configmap_and_claim(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    volumes = {"work_disk": Volume("work_disk", size=5 * 2**30, type="standard")}
    endpoints = provider.apply_app(INFRA, jupyter(), volumes)
    [deployment] = objects(cluster, "deployments")
    assert deployment["spec"]["replicas"] == 2 and len(cluster.names("pods", NS)) == 2
    assert deployment["metadata"]["labels"][LABEL_APP] == "jupyter_hub"
    assert deployment["metadata"]["labels"][LABEL_INFRASTRUCTURE] == INFRA
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "jupyter/base-notebook:2024"
    assert container["env"] == [{"name": "MODE", "value": "lab,dev"}]
    assert container["command"] == ["start-notebook.sh", "--port=8888"]
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": str(512 * 2**20)}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    [config] = objects(cluster, "configmaps")
    files = mounts["/etc/jupyter/config.py"]
    assert config["data"][files["subPath"]] == "c.Lab = True\n"
    [claim] = objects(cluster, "persistentvolumeclaims")
    assert claim["spec"]["resources"]["requests"]["storage"] == str(5 * 2**30)
    assert claim["spec"]["storageClassName"] == "standard"
    assert mounts["/home/jovyan/work"]["name"] == claim["metadata"]["name"]
    services = {s["metadata"]["name"].rsplit("-", 1)[1]: s for s in objects(cluster, "services")}
    assert services["pub"]["spec"]["type"] == "NodePort"
    assert services["priv"]["spec"]["type"] == "ClusterIP"
    assert services["priv"]["spec"]["ports"][0]["targetPort"] == 90
    node_port = services["pub"]["spec"]["ports"][0]["nodePort"]
    priv = services["priv"]["metadata"]["name"]
    assert endpoints == [f"127.0.0.1:{node_port}", f"{priv}.{NS}.svc:9090"]


def test_apply_app_again_updates_in_place(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    first = provider.apply_app(INFRA, jupyter(count=1))
    cluster_ip = objects(cluster, "services")[0]["spec"]["clusterIP"]
    again = provider.apply_app(INFRA, jupyter(count=3, environment={"MODE": "prod"}))
    assert again == first  # the published node port is kept
    [deployment] = objects(cluster, "deployments")
    assert deployment["spec"]["replicas"] == 3 and len(cluster.names("pods", NS)) == 3
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "MODE", "value": "prod"}]
    assert objects(cluster, "services")[0]["spec"]["clusterIP"] == cluster_ip
    assert len(objects(cluster, "persistentvolumeclaims")) == 1


def test_app_published_on_a_load_balancer(cluster: KubernetesStandin) -> None:
    auth = {"type": "Kubernetes", "host": cluster.url, "token": cluster.token}
    options = {"poll_interval": 0.01, "public_service": "LoadBalancer"}
    provider = KubernetesProvider(auth, options=options)
    endpoints = provider.apply_app(INFRA, jupyter(expose_ports=[]))
    assert endpoints == ["203.0.113.10:8888"]


def test_app_in_its_own_namespace(cluster: KubernetesStandin, provider: KubernetesProvider) -> None:
    provider.apply_app(INFRA, jupyter(namespace="science", volumes=[], config_files=[]))
    namespace = cluster.get("namespaces", "", "science")
    assert LABEL_INFRASTRUCTURE not in namespace["metadata"]["labels"]  # not the infra's own
    assert len(cluster.names("deployments", "science")) == 1
    provider.cleanup(INFRA)
    assert cluster.names("namespaces") == ["science"]
    assert [k for k in cluster.objects if k[1] == "science"] == []


def test_remove_app_and_count_zero(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    provider.apply_app(INFRA, jupyter())
    provider.apply_app(INFRA, jupyter(name="other", volumes=[], config_files=[]))
    provider.remove_app(INFRA, jupyter())
    for plural in ("deployments", "services", "configmaps", "persistentvolumeclaims"):
        assert all("other" in n for n in cluster.names(plural, NS)), plural
    assert provider.apply_app(INFRA, jupyter(name="other", count=0)) == []
    assert [k for k in cluster.objects if k[0] != "namespaces"] == []
    provider.remove_app(INFRA, "other")  # already gone: fine


def test_app_errors(cluster: KubernetesStandin, provider: KubernetesProvider) -> None:
    with pytest.raises(NotFound, match="not a container image"):
        provider.apply_app(INFRA, jupyter(image="ost://cloud/123"))
    provider.prepare(INFRA)
    quota = {"metadata": {"name": "claims"}, "spec": {"hard": {"persistentvolumeclaims": "0"}}}
    cluster.add("resourcequotas", NS, quota)
    with pytest.raises(QuotaExceeded, match="exceeded quota: claims"):
        provider.apply_app(INFRA, jupyter())


def test_downloaded_config_files_must_be_utf8_text(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    cluster.files["ok.py"] = "c.Lab = 'é'\n".encode()
    cluster.files["blob.bin"] = b"\x89PNG\r\n\x1a\n\xff\x00"  # a ConfigMap's data is text
    ok = [{"path": "/etc/ok.py", "url": f"{cluster.url}/files/ok.py"}]
    provider.apply_app(INFRA, jupyter(count=1, volumes=[], config_files=ok))
    [config] = objects(cluster, "configmaps")
    assert list(config["data"].values()) == ["c.Lab = 'é'\n"]
    bad = [{"path": "/etc/logo.png", "url": f"{cluster.url}/files/blob.bin"}]
    with pytest.raises(ProviderError, match=r"config file /etc/logo.png .* not UTF-8") as err:
        provider.apply_app(INFRA, jupyter(count=1, volumes=[], config_files=bad))
    assert type(err.value) is ProviderError


def test_secret_answers_are_base64(cluster: KubernetesStandin) -> None:
    """The stand-in keeps Secrets as the API does: stringData is stored base64-encoded."""
    cluster.add("namespaces", "", {"metadata": {"name": "x"}})
    cluster.add("secrets", "x", {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    stored = cluster.get("secrets", "x", "s")
    assert "stringData" not in stored and base64.b64decode(stored["data"]["k"]) == b"v"
