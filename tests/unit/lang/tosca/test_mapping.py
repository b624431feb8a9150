"""Key mapping facts of the IM dialect, checked directly (the corpus snapshots are not the only
check). Each test names the reference section it follows."""

from pathlib import Path

import pytest

from orbis.lang import CLIENT
from orbis.lang.errors import TemplateError
from orbis.lang.tosca import load
from orbis.model.infrastructure import Credentials, Function, PortSpec

CORPUS = Path(__file__).resolve().parents[3] / "fixtures" / "tosca" / "corpus"


def corpus(name: str):  # type: ignore[no-untyped-def]
    return load(CORPUS / name, sources=CLIENT)


def test_host_and_os_capabilities_map_to_compute_fields() -> None:  # §2.1
    vm = corpus("c01_compute_full.yaml").computes["gpu_vm"]
    assert (vm.num_gpus, vm.gpu_vendor, vm.gpu_model) == (2, "NVIDIA", "T4")
    assert vm.spot is True and vm.instance_type == "g4dn.2xlarge" and vm.cpu_arch == "x86_64"
    assert vm.features == {
        "cpu.sgx": True,
        "cpu.sgx.epc_size": 128 * 10**6,
        "cpu.performance": 2.5,
        "disk.0.type": "ssd",
    }
    assert vm.credentials == Credentials("ubuntu", password="s3cret")
    assert vm.tags == {"project": "orbis", "owner": "ops"} and vm.instance_name == "trainer"
    assert (vm.count, vm.min_instances, vm.max_instances, vm.removal_list) == (2, 1, 4, ["7"])


def test_public_compute_gets_private_then_own_public_network() -> None:  # §2.1 implicit
    t = corpus("c39_many_public.yaml")
    assert [i.network for i in t.computes["a"].interfaces] == ["private_net", "public_net"]
    assert [i.network for i in t.computes["b"].interfaces] == ["private_net", "public_net_1"]
    assert [i.network for i in t.computes["c"].interfaces] == ["private_net"]
    assert t.networks["public_net"].outports == [PortSpec(80)]
    assert t.networks["public_net_1"].outports == [PortSpec(443)]
    assert all(n.implicit for n in t.networks.values())


def test_network_name_forms() -> None:  # §2.1 endpoint network_name
    t = corpus("c04_network_names.yaml")
    nets = {c: [t.networks[i.network] for i in t.computes[c].interfaces] for c in t.computes}
    assert [(n.public, n.provider_id) for n in nets["pub_provider"]] == [
        (False, None),
        (True, "external"),
    ]
    assert [(n.public, n.provider_id) for n in nets["priv_provider"]] == [(False, "internal")]
    assert [(n.public, n.provider_id) for n in nets["floating"]] == [
        (False, "tenant-net"),
        (True, "ext-pool"),
    ]
    assert [n.provider_id for n in nets["named"]] == ["my-vlan"]


def test_private_ip_false_and_clouds_split() -> None:  # §2.1
    edge = corpus("c05_public_only.yaml").computes["edge"]
    assert [i.network for i in edge.interfaces] == ["public_net"]
    assert edge.interfaces[0].additional_ip == "192.168.1.50"
    t = corpus("c06_two_clouds.yaml")
    assert t.computes["a"].interfaces[0].network == t.computes["c"].interfaces[0].network
    assert t.computes["b"].interfaces[0].network == "private_net.cloud-b.example.org"


def test_ports_replace_endpoint_logic() -> None:  # §2.2
    t = corpus("c41_explicit_public_port.yaml")
    server = t.computes["server"]
    assert [(i.network, i.order, i.ip, i.dns_name) for i in server.interfaces] == [
        ("priv", 0, "192.168.10.10", None),
        ("pub", 1, None, "server.example.org"),
    ]
    assert t.networks["pub"].public and t.networks["pub"].provider_id == "provider-ext"
    assert t.networks["priv"].create and t.networks["priv"].cidr == "192.168.10.0/24"
    assert t.networks["pub"].outports == [PortSpec(80), PortSpec(53, "udp")]  # first public net
    assert not any(n.implicit for n in t.networks.values())


def test_proxy_host_forms() -> None:  # §2.2
    assert corpus("c08_proxy_password.yaml").networks["bastion_net"].proxy_host == (
        "jump:pa55@bastion.example.org"
    )
    net = corpus("c09_proxy_key.yaml").networks["net"]
    assert (net.proxy_host, net.proxy_key) == ("admin@gw.example.org", "-----BEGIN KEY-----")


def test_an_empty_proxy_host_is_no_proxy_and_needs_no_user() -> None:
    # the IM Dashboard's proxy add-ons default proxy_host to ''
    text = """tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - grycap_custom_types: https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml
topology_template:
  node_templates:
    net:
      type: tosca.nodes.indigo.network.Network
      properties: {proxy_host: '', proxy_credential: {token_type: password}}
"""
    assert load("t.yaml", text=text).networks["net"].proxy_host is None
    with pytest.raises(TemplateError, match="proxy_host needs a proxy_credential with a 'user'"):
        load("t.yaml", text=text.replace("proxy_host: ''", "proxy_host: gw.example.org"))


def test_block_storage_volumes() -> None:  # §2.3
    [data, old] = corpus("c10_block_storage.yaml").computes["db_vm"].volumes
    assert (data.index, data.size, data.type, data.mount_path, data.device, data.fs_type) == (
        1,
        50 * 1024**3,
        "ssd",
        "/var/lib/db",
        "hdb",
        "xfs",
    )
    assert (old.index, old.volume_id, old.size, old.fs_type) == (
        2,
        "ost://cloud.example.org/vol-77",
        None,
        "ext4",
    )
    t = corpus("c11_storage_ignored.yaml")
    assert [v.name for v in t.computes["vm"].volumes] == ["sized"]
    assert any("'empty' has neither size nor volume_id" in w for w in t.warnings)


def test_kubernetes_container() -> None:  # §2.4
    app = corpus("c12_k8s_app.yaml").containers["web-app"]
    assert app.image == "docker://nginx:1.27" and app.namespace == "research"
    assert (app.num_cpus, app.num_gpus, app.mem_size) == (0.5, 1, 512 * 10**6)
    assert app.volumes == [("web_data", "/data")]
    assert app.publish_ports == [PortSpec(80, "tcp", 8080)]
    assert app.expose_ports == [PortSpec(9090)]
    assert {f["path"]: f.get("content", f.get("url")) for f in app.config_files} == {
        "/etc/nginx/conf.d/site.conf": "https://example.org/conf/site.conf",
        "/usr/share/nginx/html/index.html": "<h1>hello</h1>",
    }
    api = corpus("c13_k8s_repository_image.yaml").containers["api"]
    assert api.image == "docker://harbor.example.org/team/api:2.1"


def test_faas_hosted_and_standalone() -> None:  # §2.5
    fn = corpus("c14_faas_on_oscar.yaml").functions["detect"]
    assert fn.host == "oscar" and fn.memory == 1024**3 and fn.cpu == 0.5
    assert fn.environment == {"THRESHOLD": "0.8"} and fn.inputs[0]["path"] == "detect/in"
    lam = corpus("c15_faas_standalone.yaml").functions["lambda_fn"]
    assert lam.host is None and lam.cloud_id == "aws_lambda" and lam.memory == 512 * 1024**2


def test_galaxy_roles_and_collections_go_to_the_compute() -> None:  # §2.6
    vm = corpus("c17_galaxy_roles.yaml").computes["vm"]
    assert vm.galaxy_roles == ["grycap.docker", "geerlingguy.pip,3.0.0"]
    assert vm.galaxy_collections == ["kubernetes.core,2.4.0"]


def test_relationship_operations_in_im_order() -> None:  # §2.6
    t = corpus("c18_relationship_ops.yaml")
    app, db = t.components["app"], t.components["db"]
    assert [o.name for o in app.operations] == [
        "create",
        "pre_configure_source",
        "configure",
        "start",
        "add_source",
    ]
    pre = app.operations[1]
    assert pre.inputs["db_port"] == 6543  # SELF = the relationship (template value wins)
    assert pre.inputs["db_host"].args == ("db", "tosca_name")  # TARGET
    assert [o.name for o in db.operations] == [
        "configure",
        "post_configure_target",
        "add_target",
        "target_changed",
    ]
    assert db.operations[-1].implementation == "https://example.org/rel/changed.yml"


def test_placement_first_match_wins_and_groups() -> None:  # §4
    t = corpus("c30_placement_groups.yaml")
    assert t.groups == {"cluster": ["fe", "wn"]}
    assert (t.computes["fe"].cloud_id, t.computes["fe"].availability_zone) == ("site_a", "az-1")
    assert t.computes["edge"].cloud_id == "edge_cloud" and t.policies == []
    other = corpus("c31_other_policies.yaml")
    assert [(p.name, p.type) for p in other.policies] == [
        ("sla", "tosca.policies.indigo.SlaPlacement"),
        ("grow", "tosca.policies.Scaling"),
    ]
    assert len(other.warnings) == 2


def test_template_file_merge() -> None:  # §1
    t = corpus("c37_template_file_override.yaml")
    assert t.inputs == {"cpus": 1, "mem": "8 GB", "extra_disk": 20}  # bare values override/add
    node = t.computes["node"]
    assert (node.count, node.num_cpus, node.mem_size) == (2, 2.0, 8 * 10**9)  # node replaced
    assert list(t.outputs) == ["node_ip"] and t.name == "refined"
    assert node.type == "tosca.nodes.indigo.Compute"  # the base's imports were used


def test_functions() -> None:  # §3
    t = corpus("c25_concat_token_join.yaml")
    assert t.outputs["folded"].value == "a-b-c" and t.outputs["static"].value == "orbis-1"
    assert t.computes["web"].interfaces[0].dns_name == "www.example.org"
    art = corpus("c26_artifact_inputs.yaml").components["tool"].operations[0].inputs
    assert art["installer_path"] == Function(
        "get_artifact",
        ("tool", "installer", "https://example.org/bin/install.sh"),
        art["installer_path"].position,
    )
    assert art["created"].name == "get_operation_output"
    svc = corpus("c24_get_attribute.yaml").components["svc"].operations[0].inputs
    assert svc["host_ip"].args == ("front", "private_address", 0)  # requirement followed


def test_ansible_host_and_metadata() -> None:  # §2.7, §6
    assert corpus("c16_ansible_host.yaml").metadata["ansible_host"] == {
        "node": "control",
        "host": "ansible.example.org",
        "user": "ctl",
        "private_key": "key-data",
    }
    t = corpus("c32_metadata.yaml")
    assert t.metadata["template_name"] == "jupyter" and t.name == "my-infra"
    assert t.containers["notebook"].namespace == "team-a"
    assert t.containers["notebook"].cloud_id == "kube"


def test_imports_by_branch_tag_and_repository() -> None:  # §1
    assert (
        corpus("c33_repository_import.yaml")
        .computes["vm"]
        .operations[0]
        .inputs["os_users"][0]["os_user_name"]
        == "alice"
    )
    assert "recipe" in corpus("c34_indigo_devel_import.yaml").components
    assert "fe" in corpus("c35_ec3_tosca_ha.yaml").components


def test_get_artifact_outside_operation_inputs_is_an_error() -> None:  # §3
    text = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    vm: {type: tosca.nodes.Compute}
  outputs:
    x: {value: {get_artifact: [vm, nothing]}}
"""
    with pytest.raises(TemplateError, match="6:16: get_artifact can only be used as an operation"):
        load("t.yaml", text=text)


def container_template(ports: str, files: str = "") -> str:
    """A Container.Application.Docker on a Runtime with the given publish_ports and artifacts."""
    return f"""tosca_definitions_version: tosca_simple_yaml_1_0
imports:
  - grycap_custom_types: https://raw.githubusercontent.com/grycap/tosca/main/custom_types.yaml
topology_template:
  node_templates:
    web:
      type: tosca.nodes.Container.Application.Docker
      artifacts:
        image: {{file: nginx:1.27, type: tosca.artifacts.Deployment.Image.Container.Docker}}
{files}
      requirements:
        - host: runtime
    runtime:
      type: tosca.nodes.Container.Runtime.Docker
      capabilities:
        host:
          properties:
            publish_ports: {ports}
"""


def test_kubernetes_container_endpoint_is_the_ingress_url() -> None:  # §2.4 publish_ports
    ports = """
              - {source: 80, target: 8080, endpoint: "https://Web.Example.org/hub"}
              - {source: 443, endpoint: "https://other.example.org"}"""
    t = load("t.yaml", text=container_template(ports))
    app = t.containers["web"]
    assert app.ingress_url == "https://web.example.org/hub"  # the first port's, host lowered
    assert app.publish_ports == [PortSpec(80, "tcp", 8080), PortSpec(443)]
    assert any("only the first port's endpoint" in w for w in t.warnings)
    bare = load("t.yaml", text=container_template('[{source: 80, endpoint: "web.example.org"}]'))
    assert bare.containers["web"].ingress_url == "http://web.example.org/"  # no scheme: http
    none = load("t.yaml", text=container_template("[{source: 80}]"))
    assert none.containers["web"].ingress_url is None


@pytest.mark.parametrize(
    ("port", "why"),
    [
        ('endpoint: "https://10.0.0.1/"', "not an IP address"),
        ('endpoint: "https://web.example.org:8443/"', "takes no port"),
        ('endpoint: "ftp://web.example.org/"', "scheme must be http or https"),
        ('endpoint: "https://web_app.example.org/"', "is not a DNS name"),
        ('endpoint: "https://web.example.org/?x=1"', "no user, query or fragment"),
        ('protocol: udp, endpoint: "https://dns.example.org"', "first published port must be TCP"),
    ],
)
def test_kubernetes_container_bad_endpoints(port: str, why: str) -> None:  # §2.4
    with pytest.raises(TemplateError, match=why):
        load("t.yaml", text=container_template(f"[{{source: 80, {port}}}]"))


def test_kubernetes_container_base64_files_need_the_marker() -> None:  # §2.4 artifacts
    files = """        plain:
          file: a.conf
          type: tosca.artifacts.File
          deploy_path: /etc/a.conf
          properties: {content: "listen 80;"}
        key:
          file: key.bin
          type: tosca.artifacts.File
          deploy_path: /etc/certs/key.bin
          properties: {encoding: base64, content: "AAECA/+A\\nzM0=\\n"}
        unmarked:
          file: b.txt
          type: tosca.artifacts.File
          deploy_path: /etc/b.txt
          properties: {content: "aGVsbG8gd29ybGQgYWdhaW4="}"""
    t = load("t.yaml", text=container_template("[{source: 80}]", files))
    by_path = {f["path"]: f for f in t.containers["web"].config_files}
    assert by_path["/etc/certs/key.bin"]["encoding"] == "base64"
    assert by_path["/etc/certs/key.bin"]["content"] == "AAECA/+A\nzM0=\n"
    assert "encoding" not in by_path["/etc/a.conf"]
    assert "encoding" not in by_path["/etc/b.txt"]  # base64-looking text is not sniffed...
    assert any("'unmarked' looks like base64" in w for w in t.warnings)  # ...but pointed out
    assert not any("'plain'" in w for w in t.warnings)


@pytest.mark.parametrize(
    ("properties", "why"),
    [
        ('{encoding: base64, content: "not base64!"}', "says encoding base64 but its content"),
        ('{encoding: gzip, content: "x"}', "unknown encoding 'gzip'"),
    ],
)
def test_kubernetes_container_bad_base64_files(properties: str, why: str) -> None:  # §2.4
    files = f"""        key:
          file: key.bin
          type: tosca.artifacts.File
          deploy_path: /etc/key.bin
          properties: {properties}"""
    with pytest.raises(TemplateError, match=why):
        load("t.yaml", text=container_template("[{source: 80}]", files))


def test_a_container_image_named_by_an_input() -> None:  # IM's k8s templates
    text = (
        container_template("[{source: 80}]")
        .replace(
            "topology_template:\n",
            "topology_template:\n  inputs:\n    image: {type: string, default: 'httpd:2'}\n",
        )
        .replace("{file: nginx:1.27,", "{file: {get_input: image},")
    )
    assert load("t.yaml", text=text).containers["web"].image == "docker://httpd:2"
    given = load("t.yaml", text=text, inputs={"image": "redis:7"})
    assert given.containers["web"].image == "docker://redis:7"
