"""Container applications (tosca.nodes.Container.Application.Docker) through the service, on a
Kubernetes site (the stand-in API server): the app is one "VM" as in IM, deployed with its
volume and ports, its endpoints become the `endpoints` attribute, and destroy removes it."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet

from orbis.auth import identify
from orbis.providers.sim import SimProvider
from orbis.secrets import Sealer
from orbis.service import OrbisService
from orbis.store.repository import Store
from orbis.testing.standins.kubernetes import serve

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - grycap_custom_types: https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml
topology_template:
  node_templates:
    web:
      type: tosca.nodes.Container.Application.Docker
      properties:
        environment: {MODE: production}
      artifacts:
        image:
          file: nginx:1.27
          type: tosca.artifacts.Deployment.Image.Container.Docker
        index:
          file: index.html
          type: tosca.artifacts.File
          deploy_path: /usr/share/nginx/html/index.html
          properties:
            content: "<h1>hello</h1>"
      requirements:
        - host: web_runtime
    web_runtime:
      type: tosca.nodes.Container.Runtime.Docker
      capabilities:
        host:
          properties:
            num_cpus: 0.5
            mem_size: 512 MB
            volumes: ["web_data:/data"]
            publish_ports:
              - {protocol: tcp, source: 80, target: 8080}
    web_data:
      type: tosca.nodes.BlockStorage
      properties: {size: 2 GB}
  outputs:
    urls:
      value: { get_attribute: [ web, endpoints ] }
"""
ALICE = "id = im; type = InfrastructureManager; username = alice; password = a"


def service(tmp_path: Path, db_url: str) -> OrbisService:
    store = Store(db_url)
    svc = OrbisService(store, SimProvider(tmp_path / "local.db"), tmp_path / "work")
    svc.configure_access(Sealer(Fernet.generate_key()))
    svc.sites.options = {"kubernetes": {"poll_interval": 0.01, "launch_timeout": 5}}
    return svc


async def test_an_app_runs_on_the_kubernetes_site_and_goes_with_the_infrastructure(
    tmp_path, db_url
):
    with serve(pending_reads=1) as cluster:
        svc = service(tmp_path, db_url)
        await svc.resume()
        auth = (f"{ALICE}\nid = k8s; type = Kubernetes; host = {cluster.url}; "
                f"token = {cluster.token}")
        who = identify(auth)[0]
        try:
            infra = await svc.create(who, TEMPLATE)
            assert await svc.wait_reconciled(infra, timeout=30)
            (app,) = svc.store.nodes(infra)
            assert (app.name, app.state, app.site) == ("web", "configured", "k8s"), app.log
            (service_,) = cluster.all_of("services")
            node_port = service_["spec"]["ports"][0]["nodePort"]
            assert service_["spec"]["type"] == "NodePort"
            assert app.endpoints == [f"127.0.0.1:{node_port}"]  # the cluster's address
            assert svc.outputs(who, infra)["urls"] == app.endpoints
            (deployment,) = cluster.all_of("deployments")
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            assert container["image"] == "nginx:1.27"
            assert {"name": "MODE", "value": "production"} in container["env"]
            (claim,) = cluster.all_of("persistentvolumeclaims")
            assert claim["spec"]["resources"]["requests"]["storage"] == "2000000000"
            assert svc.state(who, infra).state == "configured"
            await svc.destroy(who, infra)
            assert cluster.all_of("deployments") == [] and cluster.all_of("services") == []
        finally:
            await svc.shutdown()


async def test_an_app_without_a_kubernetes_site_fails_with_the_reason(tmp_path, db_url):
    svc = service(tmp_path, db_url)
    await svc.resume()
    try:
        infra = await svc.create(identify(ALICE)[0], TEMPLATE)
        assert await svc.wait_reconciled(infra, timeout=30)
        (app,) = svc.store.nodes(infra)
        assert app.state == "failed" and "needs a site of type Kubernetes" in app.error
    finally:
        await svc.shutdown()
