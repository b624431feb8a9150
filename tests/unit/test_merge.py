import yaml

from orbis.lang.merge import count_patch, merge_documents, merge_tosca


def test_maps_by_key_lists_by_index_scalars_replaced():
    old = {"a": {"x": 1, "y": [1, {"k": 1}, 3]}, "b": "old"}
    new = {"a": {"y": [9, {"j": 2}]}, "b": "new", "c": True}
    assert merge_documents(old, new) == {
        "a": {"x": 1, "y": [9, {"k": 1, "j": 2}, 3]},  # the shorter list does not shrink
        "b": "new",
        "c": True,
    }


def test_count_patch_changes_only_the_count():
    stored = yaml.safe_dump({"topology_template": {"node_templates": {"wn": {
        "type": "tosca.nodes.indigo.Compute",
        "capabilities": {"scalable": {"properties": {"count": 1}}, "host": {"properties": {
            "num_cpus": 2}}}}}}})  # fmt: skip
    merged = yaml.safe_load(merge_tosca(stored, count_patch("wn", 5)))
    wn = merged["topology_template"]["node_templates"]["wn"]
    assert wn["capabilities"]["scalable"]["properties"]["count"] == 5
    assert wn["capabilities"]["host"]["properties"]["num_cpus"] == 2
    assert wn["type"] == "tosca.nodes.indigo.Compute"
