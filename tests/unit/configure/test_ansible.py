from pathlib import Path

import pytest

from orbis.configure.ansible import (
    PlaybookError,
    StepRun,
    Target,
    build_inventory,
    build_playbook,
    collect,
    load_plays,
)


def test_task_list_becomes_one_play():
    plays = load_plays("- name: t\n  debug: {msg: hi}\n", "x.yml")
    assert plays == [{"name": "x.yml", "tasks": [{"name": "t", "debug": {"msg": "hi"}}]}]


def test_plays_kept_and_not_a_playbook_refused():
    assert load_plays("- hosts: all\n  tasks: []\n", "p")[0]["hosts"] == "all"
    with pytest.raises(PlaybookError, match="list of plays"):
        load_plays("key: value\n", "bad.yml")
    with pytest.raises(PlaybookError, match="not valid YAML"):
        load_plays("- [unclosed\n", "bad.yml")


def test_plays_are_aimed_at_their_step_group_with_step_variables():
    steps = [
        StepRun(
            "a_conf",
            ["web_0"],
            [{"hosts": "x", "connection": "local", "tasks": [], "vars": {"k": 1}}],
            {"v": 2},
        )
    ]
    play = build_playbook(steps)[0]
    assert play["hosts"] == "orbis_step_0"
    assert "connection" not in play
    assert play["vars"] == {"k": 1, "v": 2, "orbis_step": "a_conf"}


def test_inventory_has_hosts_node_groups_and_step_groups():
    targets = [Target("web_0", "10.0.0.2", groups=("web",), variables={"IM_NODE_VMID": 0})]
    inv = build_inventory(targets, [StepRun("s", ["web_0"], [])], Path("/k"))
    host = inv["all"]["hosts"]["web_0"]
    assert host["ansible_host"] == "10.0.0.2" and host["ansible_ssh_private_key_file"] == "/k"
    assert host["IM_NODE_VMID"] == 0
    assert "web_0" in inv["all"]["children"]["web"]["hosts"]
    assert "web_0" in inv["all"]["children"]["orbis_step_0"]["hosts"]


def test_results_are_split_per_step_and_host():
    steps = [StepRun("s1", ["a", "b"], []), StepRun("s2", ["a"], [])]
    events = [
        {"kind": "result", "step": "s1", "host": "a", "task": "t", "status": "ok", "result": {}},
        {
            "kind": "result",
            "step": "s1",
            "host": "b",
            "task": "t",
            "status": "failed",
            "result": {"msg": "boom"},
        },
    ]
    results = collect(steps, events, "PLAY RECAP", 2)
    assert results[("s1", "a")].ok
    assert not results[("s1", "b")].ok and "boom" in results[("s1", "b")].output
    # a host that ran nothing in a failed run did not succeed
    assert not results[("s2", "a")].ok
