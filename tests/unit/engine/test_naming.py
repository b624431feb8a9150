"""Host names and IM's recipe variables, from the model alone."""

from __future__ import annotations

from dataclasses import dataclass

from orbis.engine import naming
from orbis.model.infrastructure import Compute, Network, NetworkInterface, Template


@dataclass
class Node:
    name: str
    vm_id: int
    private_ip: str | None = "10.0.0.5"
    public_ip: str | None = None
    site: str | None = None


def compute(name: str, *interfaces: NetworkInterface) -> Compute:
    return Compute(name=name, type="tosca.nodes.Compute", interfaces=list(interfaces))


def test_host_names_follow_dns_name_with_the_vm_number():
    wk = compute("wk", NetworkInterface("priv", 0, dns_name="vnode-#N#"))
    assert naming.host_name(wk, "wk", 3) == ("vnode-3", "localdomain")
    head = compute("head", NetworkInterface("pub", 1, dns_name="Head.Example.ORG."),
                   NetworkInterface("priv", 0))  # fmt: skip
    assert naming.host_name(head, "head", 0) == ("head", "example.org")
    assert naming.host_name(compute("my_node"), "my_node", 2) == ("my-node-2", "localdomain")
    assert naming.host_name(None, "x", 1) == ("x-1", "localdomain")


def test_variables_name_the_master_and_each_interface():
    template = Template(
        source_file="t", version="tosca",
        computes={
            "head": compute("head", NetworkInterface("pub", 0, dns_name="head.c.test"),
                            NetworkInterface("priv", 1)),  # fmt: skip
            "wk": compute("wk", NetworkInterface("priv", 0, dns_name="wk-#N#")),
        },
        networks={"pub": Network("pub", public=True), "priv": Network("priv")},
    )
    head = Node("head", 0, public_ip="192.0.2.7")
    wk = Node("wk", 2, private_ip="10.0.0.9", site="ost")
    first = naming.master([wk, head])
    assert first is head
    facts = naming.im_variables(template, wk, first, "inf-1", "OpenStack", "https://k:5000")
    assert facts["IM_NODE_FQDN"] == "wk-2.localdomain" and facts["IM_NODE_NUM"] == 2
    assert facts["IM_MASTER_FQDN"] == "head.c.test" and facts["IM_MASTER_HOSTNAME"] == "head"
    assert facts["IM_NODE_NET_0_IP"] == "10.0.0.9"
    assert (facts["IM_NODE_CLOUD_TYPE"], facts["IM_NODE_CLOUD_SERVER"]) == (
        "OpenStack", "https://k:5000")  # fmt: skip
    own = naming.im_variables(template, head, first, "inf-1", "Local", "localhost")
    assert own["IM_NODE_NET_0_IP"] == "192.0.2.7" and own["IM_NODE_NET_1_IP"] == "10.0.0.5"
    lone = Template("t", "tosca", computes={"x": compute("x")})
    bare = naming.network_ips(lone, Node("x", 1, public_ip="p"))
    assert bare == {"IM_NODE_NET_0_IP": "p", "IM_NODE_NET_1_IP": "10.0.0.5"}
