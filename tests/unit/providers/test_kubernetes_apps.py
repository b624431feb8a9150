"""Container apps (tosca.nodes.Container.Application) on the stand-in cluster."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from orbis.model.infrastructure import ContainerApp, PortSpec, Volume
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    NotFound,
    ProviderAuthError,
    ProviderError,
    QuotaExceeded,
)
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
    cluster: KubernetesStandin, provider: KubernetesProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster.files["ok.py"] = "c.Lab = 'é'\n".encode()
    cluster.files["blob.bin"] = b"\x89PNG\r\n\x1a\n\xff\x00"  # a ConfigMap's data is text
    monkeypatch.delenv("ORBIS_FETCH_ALLOW", raising=False)  # the stand-in lists itself in it
    ok = [{"path": "/etc/ok.py", "url": f"{cluster.url}/files/ok.py"}]
    with pytest.raises(ProviderError, match=r"loopback address \(ORBIS_FETCH_ALLOW\)") as err:
        provider.apply_app(INFRA, jupyter(count=1, volumes=[], config_files=ok))  # SSRF rule
    assert type(err.value) is ProviderError  # not Transient: a retry cannot help
    monkeypatch.setenv("ORBIS_FETCH_ALLOW", urlsplit(cluster.url).netloc)  # the stand-in only
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


# -- Ingress for the first published port's endpoint (IM: its DNS name) ----------------------


def web(url: str | None = "https://jupyter.example.org/hub", **more: object) -> ContainerApp:
    """One replica, one published port, no volume or file: the app an Ingress is about."""
    fields: dict[str, object] = {"count": 1, "volumes": [], "config_files": [],
                                 "expose_ports": [], "ingress_url": url}  # fmt: skip
    return jupyter(**(fields | more))


def test_https_endpoint_makes_an_ingress_with_tls(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    endpoints = provider.apply_app(INFRA, web())
    [deployment] = objects(cluster, "deployments")
    [ingress] = objects(cluster, "ingresses")
    [service] = objects(cluster, "services")
    name = deployment["metadata"]["name"]
    assert ingress["metadata"]["name"] == name  # named after the app, labelled like the rest
    assert ingress["metadata"]["labels"] == deployment["metadata"]["labels"]
    assert "annotations" not in ingress["metadata"]  # no cert-manager unless configured
    assert "ingressClassName" not in ingress["spec"]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "jupyter.example.org"
    assert rule["http"]["paths"] == [{
        "path": "/hub", "pathType": "Prefix",
        "backend": {"service": {"name": service["metadata"]["name"], "port": {"number": 8888}}},
    }]  # fmt: skip
    assert service["spec"]["ports"][0]["port"] == 8888 and service["spec"]["type"] == "NodePort"
    tls = {"hosts": ["jupyter.example.org"], "secretName": f"{name}-tls"}
    assert ingress["spec"]["tls"] == [tls]
    node_port = service["spec"]["ports"][0]["nodePort"]
    assert endpoints == ["https://jupyter.example.org/hub", f"127.0.0.1:{node_port}"]


def test_operator_options_set_the_ingress_class_and_cert_manager(
    cluster: KubernetesStandin,
) -> None:
    auth = {"type": "Kubernetes", "host": cluster.url, "token": cluster.token}
    options = {"poll_interval": 0.01, "ingress_class": "nginx", "cluster_issuer": "letsencrypt"}
    provider = KubernetesProvider(auth, options=options)
    provider.apply_app(INFRA, web())
    [ingress] = objects(cluster, "ingresses")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    provider.apply_app(INFRA, web("http://jupyter.example.org/"))  # no TLS: nothing to issue
    [ingress] = objects(cluster, "ingresses")
    assert "tls" not in ingress["spec"] and "annotations" not in ingress["metadata"]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/"


def test_no_dns_name_no_ingress(cluster: KubernetesStandin, provider: KubernetesProvider) -> None:
    endpoints = provider.apply_app(INFRA, web(None))
    assert cluster.names("ingresses", NS) == []
    assert not any(m == "POST" and p.endswith("/ingresses") for m, p in cluster.requests)
    [service] = objects(cluster, "services")
    assert endpoints == [f"127.0.0.1:{service['spec']['ports'][0]['nodePort']}"]


def test_updating_the_app_updates_then_removes_its_ingress(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    provider.apply_app(INFRA, web("https://a.example.org/"))
    [first] = objects(cluster, "ingresses")
    endpoints = provider.apply_app(INFRA, web("http://b.example.org/api"))
    [ingress] = objects(cluster, "ingresses")
    assert ingress["metadata"]["uid"] == first["metadata"]["uid"]  # replaced in place
    assert ingress["spec"]["rules"][0]["host"] == "b.example.org"
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/api"
    assert "tls" not in ingress["spec"]
    assert endpoints[0] == "http://b.example.org/api"
    endpoints = provider.apply_app(INFRA, web(None))  # the endpoint is gone from the template
    assert cluster.names("ingresses", NS) == [] and len(endpoints) == 1
    assert len(cluster.names("deployments", NS)) == 1  # the app itself stays


def test_remove_app_count_zero_and_cleanup_delete_the_ingress(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    provider.apply_app(INFRA, web())
    provider.apply_app(INFRA, web("https://other.example.org/", name="other"))
    provider.remove_app(INFRA, web())
    [left] = objects(cluster, "ingresses")
    assert left["spec"]["rules"][0]["host"] == "other.example.org"
    provider.apply_app(INFRA, web("https://other.example.org/", name="other", count=0))
    assert cluster.names("ingresses", NS) == []
    provider.apply_app(INFRA, web(namespace="science"))  # cleanup finds it by its labels
    assert len(cluster.names("ingresses", "science")) == 1
    provider.cleanup(INFRA)
    assert cluster.names("ingresses", "science") == []
    assert cluster.names("namespaces") == ["science"]


def test_removing_an_app_removes_the_certificate_cert_manager_made(
    cluster: KubernetesStandin,
) -> None:
    auth = {"type": "Kubernetes", "host": cluster.url, "token": cluster.token}
    provider = KubernetesProvider(auth, options={"poll_interval": 0.01,
                                                 "cluster_issuer": "letsencrypt"})  # fmt: skip
    provider.apply_app(INFRA, web())
    [ingress] = objects(cluster, "ingresses")
    secret_name = ingress["spec"]["tls"][0]["secretName"]
    tls = {"metadata": {"name": secret_name}, "type": "kubernetes.io/tls",  # cert-manager's
           "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}}  # fmt: skip
    cluster.add("secrets", NS, tls)
    provider.apply_app(INFRA, web(None))  # the endpoint went away: so does its certificate
    assert cluster.names("ingresses", NS) == [] and secret_name not in cluster.names("secrets", NS)
    provider.apply_app(INFRA, web())
    cluster.add("secrets", NS, tls)
    provider.remove_app(INFRA, "jupyter_hub")
    assert cluster.names("secrets", NS) == []


def test_an_account_without_ingress_rights(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    """RBAC may keep networking.k8s.io from the account: apps without an endpoint, removal
    and cleanup still work; an app that needs an Ingress fails with the API's reason."""
    cluster.forbidden = {"ingresses"}
    provider.apply_app(INFRA, web(None))
    assert any(p.endswith("/ingresses") for _, p in cluster.requests)  # it did ask
    provider.remove_app(INFRA, "jupyter_hub")
    assert cluster.names("deployments", NS) == []
    with pytest.raises(ProviderAuthError, match='cannot create resource "ingresses"'):
        provider.apply_app(INFRA, web())
    provider.cleanup(INFRA)
    assert cluster.names("namespaces") == []


def test_an_endpoint_needs_a_tcp_published_port(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    with pytest.raises(ProviderError, match="needs a first published port that is TCP"):
        provider.apply_app(INFRA, web(publish_ports=[PortSpec(53, "udp")]))
    with pytest.raises(ProviderError, match="needs a first published port"):
        provider.apply_app(INFRA, web(publish_ports=[]))
    assert [k for k in cluster.objects if k[0] != "namespaces"] == []  # nothing was made


# -- base64 config files: a Secret ------------------------------------------------------------


def test_base64_file_is_a_secret_and_a_plain_file_stays_in_the_configmap(
    cluster: KubernetesStandin, provider: KubernetesProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORBIS_FETCH_ALLOW", urlsplit(cluster.url).netloc)  # the stand-in only
    key = bytes(range(256))  # not text: no ConfigMap `data` could hold it
    wrapped = base64.encodebytes(key).decode()  # with line breaks, as `base64` writes it
    cluster.files["ca.b64"] = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n")
    files = [
        {"path": "/etc/app/app.conf", "content": "port = 8888\n"},
        {"path": "/etc/app/key.bin", "content": wrapped, "encoding": "base64"},
        {"path": "/etc/app/ca.pem", "url": f"{cluster.url}/files/ca.b64", "encoding": "base64"},
    ]
    provider.apply_app(INFRA, web(None, config_files=files))
    [deployment] = objects(cluster, "deployments")
    pod = deployment["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    [config] = objects(cluster, "configmaps")
    [secret] = objects(cluster, "secrets")
    assert secret["metadata"]["labels"] == deployment["metadata"]["labels"]
    plain = mounts["/etc/app/app.conf"]
    assert volumes[plain["name"]]["configMap"]["name"] == config["metadata"]["name"]
    assert config["data"] == {plain["subPath"]: "port = 8888\n"}  # the text only
    for path, content in (("/etc/app/key.bin", key),
                          ("/etc/app/ca.pem", b"-----BEGIN CERTIFICATE-----\n")):  # fmt: skip
        mount = mounts[path]
        assert volumes[mount["name"]]["secret"]["secretName"] == secret["metadata"]["name"]
        assert base64.b64decode(secret["data"][mount["subPath"]]) == content  # mounted bytes
    assert len(secret["data"]) == 2
    provider.apply_app(INFRA, web(None, config_files=files[:1]))  # no base64 file any more
    assert cluster.names("secrets", NS) == [] and len(cluster.names("configmaps", NS)) == 1
    provider.apply_app(INFRA, web(None, config_files=files[1:2]))  # only a base64 file
    assert cluster.names("configmaps", NS) == [] and len(cluster.names("secrets", NS)) == 1
    provider.remove_app(INFRA, "jupyter_hub")
    assert cluster.names("secrets", NS) == []


def test_base64_file_must_be_base64(
    cluster: KubernetesStandin, provider: KubernetesProvider
) -> None:
    bad = [{"path": "/etc/app/key.bin", "content": "not base64!", "encoding": "base64"}]
    with pytest.raises(ProviderError, match="key.bin is marked base64 but its content is not"):
        provider.apply_app(INFRA, web(None, config_files=bad))


# -- the stand-in refuses what the API server refuses ----------------------------------------


def test_standin_validates_ingresses_and_secret_data(cluster: KubernetesStandin) -> None:
    config = client.Configuration(host=cluster.url)
    config.api_key = {"BearerToken": cluster.token}
    config.api_key_prefix = {"BearerToken": "Bearer"}
    api = client.ApiClient(config)
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "x"}})
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    path = {"path": "hub", "pathType": "Prefix", "backend": backend}  # a Prefix is absolute
    body = {
        "metadata": {"name": "web"},
        "spec": {"rules": [{"host": "web.example.org", "http": {"paths": [path]}}]},
    }
    networking = client.NetworkingV1Api(api)
    with pytest.raises(ApiException) as err:
        networking.create_namespaced_ingress("x", body)
    assert err.value.status == 422 and "must be an absolute path" in str(err.value.body)
    path["path"] = "/hub"
    made = networking.create_namespaced_ingress("x", body)
    assert made.spec.rules[0].http.paths[0].backend.service.port.number == 80
    body["spec"]["rules"][0]["host"] = "10.0.0.1"
    body["metadata"]["resourceVersion"] = made.metadata.resource_version
    with pytest.raises(ApiException) as err:
        networking.replace_namespaced_ingress("web", "x", body)
    assert err.value.status == 422 and "not an IP address" in str(err.value.body)
    secret = {"metadata": {"name": "s"}, "data": {"k": "not base64!"}}
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(api).create_namespaced_secret("x", secret)
    assert err.value.status == 400 and "illegal base64 data" in str(err.value.body)
