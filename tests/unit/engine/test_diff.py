from dataclasses import dataclass

from orbis.engine.diff import NodeAction, needs_configuration, node_actions


@dataclass
class N:
    vm_id: int
    desired: str = "running"
    state: str = "pending"
    provider_id: str | None = None
    reboot_pending: bool = False
    needs_config: bool = True
    deleted: bool = False


def test_each_difference_gives_its_action():
    nodes = [
        N(0),  # never launched
        N(1, state="configured", provider_id="a"),  # fine
        N(2, desired="absent", state="configured", provider_id="b"),
        N(3, desired="stopped", state="configured", provider_id="c"),
        N(4, state="stopped", provider_id="d"),
        N(5, state="configured", provider_id="e", reboot_pending=True),
        N(6, state="failed"),  # failed launches are not retried by themselves
        N(7, desired="absent", deleted=True, state="off"),  # already gone
        N(8, desired="stopped", state="stopped", provider_id="f"),
    ]
    assert node_actions(nodes) == [
        NodeAction("launch", 0),
        NodeAction("destroy", 2),
        NodeAction("stop", 3),
        NodeAction("start", 4),
        NodeAction("reboot", 5),
    ]


def test_configuration_only_for_running_wanted_nodes():
    nodes = [
        N(0, state="running"),
        N(1, state="configured", needs_config=False),
        N(2, state="pending"),
        N(3, state="running", desired="absent"),
        N(4, state="unconfigured"),
    ]
    assert needs_configuration(nodes) == [0, 4]
