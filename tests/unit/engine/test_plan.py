from orbis.engine.machines import local_image
from orbis.engine.plan import group_by_level, levels, plan_configuration
from orbis.model.infrastructure import Component, Compute, Operation, Template

HOSTED = "tosca.relationships.HostedOn"
DEPENDS = "tosca.relationships.DependsOn"


def op(name: str) -> Operation:
    return Operation(name=name, implementation=f"/p/{name}.yml")


def cluster() -> Template:
    t = Template(source_file="t.yaml", version="tosca_simple_yaml_1_0")
    t.computes["front"] = Compute(
        "front", "tosca.nodes.indigo.Compute", operations=[op("configure")]
    )
    t.computes["wn"] = Compute("wn", "tosca.nodes.indigo.Compute", count=3)
    t.components["lrms_front"] = Component(
        "lrms_front",
        "x",
        host="front",
        requirements=[(HOSTED, "front")],
        operations=[op("start"), op("create"), op("configure")],
    )
    t.components["lrms_wn"] = Component(
        "lrms_wn",
        "x",
        host="wn",
        requirements=[(HOSTED, "wn"), (DEPENDS, "lrms_front")],
        operations=[op("configure")],
    )
    t.components["no_ops"] = Component("no_ops", "x", host="wn", requirements=[(HOSTED, "wn")])
    t.components["attached"] = Component(
        "attached",
        "x",
        host="front",
        requirements=[("tosca.relationships.AttachesTo", "wn"), (HOSTED, "front")],
        operations=[op("configure")],
    )
    return t


def test_levels_follow_hosting_and_dependencies():
    lv = levels(cluster())
    assert lv["front"] == 1 and lv["wn"] == 1
    assert lv["lrms_front"] == 2
    assert lv["lrms_wn"] == 3  # after the front end's software
    assert lv["attached"] == 2  # AttachesTo does not order


def test_steps_have_im_names_lifecycle_order_and_skip_empty_nodes():
    steps = plan_configuration(cluster())
    names = [(s.level, s.name) for s in steps]
    assert names == [
        (1, "front_conf"),
        (2, "attached_front_conf"),
        (2, "lrms_front_front_conf"),
        (3, "lrms_wn_wn_conf"),
    ]
    lrms = next(s for s in steps if s.node == "lrms_front")
    assert [o.name for o in lrms.operations] == ["create", "configure", "start"]
    assert [len(g) for g in group_by_level(steps)] == [1, 2, 1]


def test_cycles_do_not_hang():
    t = Template(source_file="t", version="v")
    t.computes["a"] = Compute("a", "tosca.nodes.Compute")
    t.components["x"] = Component("x", "x", host="a", requirements=[(DEPENDS, "y")])
    t.components["y"] = Component("y", "x", host="a", requirements=[(DEPENDS, "x")])
    assert set(levels(t)) == {"a", "x", "y"}


def test_local_images():
    assert local_image(None)[0] is None and "node image" in local_image(None)[1]
    image, warning = local_image("ost://cloud.example/1234")
    assert image is None and "another cloud" in warning
    assert local_image("docker://debian:12") == ("debian:12", None)
    assert local_image("myimage:1") == ("myimage:1", None)
