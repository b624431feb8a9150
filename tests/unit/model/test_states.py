from orbis.model.states import NodeState as S
from orbis.model.states import aggregate_state, settled


def test_all_configured_is_configured():
    assert aggregate_state([S.CONFIGURED, S.CONFIGURED]) == S.CONFIGURED


def test_unconfigured_replaces_configured_whatever_the_order():
    assert aggregate_state([S.CONFIGURED, S.UNCONFIGURED]) == S.UNCONFIGURED
    assert aggregate_state([S.UNCONFIGURED, S.CONFIGURED]) == S.UNCONFIGURED


def test_first_failed_or_unknown_decides():
    assert aggregate_state([S.PENDING, S.FAILED, S.UNKNOWN]) == S.FAILED
    assert aggregate_state([S.CONFIGURED, S.UNKNOWN, S.FAILED]) == S.UNKNOWN


def test_pending_beats_running_beats_settled():
    assert aggregate_state([S.CONFIGURED, S.RUNNING, S.PENDING]) == S.PENDING
    assert aggregate_state([S.CONFIGURED, S.RUNNING]) == S.RUNNING


def test_first_settled_state_seen_wins_except_unconfigured():
    assert aggregate_state([S.STOPPED, S.CONFIGURED]) == S.STOPPED
    assert aggregate_state([S.OFF, S.UNCONFIGURED]) == S.OFF


def test_deleting_wins_and_empty_infrastructures():
    assert aggregate_state([S.CONFIGURED], deleting=True) == S.DELETING
    assert aggregate_state([], configuring=True) == S.PENDING
    assert aggregate_state([]) == S.PENDING


def detail(**fields: object) -> dict[str, object]:
    view: dict[str, object] = {"phase": "done", "state": "configured", "nodes": [{"vm_id": 0}],
                               "generation": 3, "reconciled": 3}  # fmt: skip
    view.update(fields)
    return view


def test_a_view_is_settled_only_once_the_asked_generation_is_reconciled():
    # right after a reconfigure the phase still reads `done` from the previous run
    assert not settled(detail(reconciled=2))
    assert settled(detail())
    assert not settled(detail(phase="configuring"))


def test_a_settled_generation_ends_even_a_transient_state():
    assert settled(detail(state="running"))  # nothing more will happen without a request
    assert not settled({"phase": "done", "state": "running", "nodes": [{"vm_id": 0}]})
    assert settled({"phase": "done", "state": "configured", "nodes": [{"vm_id": 0}]})
    assert settled(detail(nodes=[], state="unknown"))
