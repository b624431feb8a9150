"""GET /orbis/infrastructures/{id}/elastic: the pools, knobs and the monitor's decisions."""

import json
import time
from pathlib import Path

from .conftest import ALICE, BOB, YAML, create

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "elastic-slurm.yaml"


def elastic_without_machines() -> str:
    """The example with no front-end machine (this API test's cloud launches nothing)."""
    text = EXAMPLE.read_text()
    marker = "    front:\n      type: tosca.nodes.indigo.Compute\n      capabilities:\n"
    assert marker in text
    return text.replace(marker, marker + "        scalable:\n          properties:\n"
                        "            count: 0\n")


def test_elastic_view_and_the_monitors_first_decision(make_client):
    client = make_client()
    infra = create(client, body=elastic_without_machines())
    path = f"/orbis/infrastructures/{infra}/elastic"
    view = client.get(path, headers={"Authorization": ALICE}).json()
    assert view["front"] == "front" and view["lrms"] == "slurm"
    assert [p["compute"] for p in view["pools"]] == ["wn_a", "wn_b"]
    assert view["knobs"]["idle_time"] == 300 and view["knobs"]["max_booting"] == 2
    deadline = time.monotonic() + 20
    while not view["decisions"] and time.monotonic() < deadline:
        time.sleep(0.2)
        view = client.get(path, headers={"Authorization": ALICE}).json()
    assert view["decisions"][0]["reason"] == "waiting for the front-end 'front' to be configured"
    assert view["monitor"]  # a monitor of this server holds the cluster's lease
    events = client.get(f"/orbis/infrastructures/{infra}/events",
                        headers={"Authorization": ALICE}).json()["events"]
    assert any(e["subject"] == "elastic" for e in events)
    # another user sees nothing of it
    assert client.get(path, headers={"Authorization": BOB}).status_code in (403, 404)


def test_a_plain_infrastructure_has_no_elastic_view(make_client):
    client = make_client()
    infra = create(client)
    answer = client.get(f"/orbis/infrastructures/{infra}/elastic",
                        headers={"Authorization": ALICE, **YAML})
    assert answer.status_code == 404
    assert "not an elastic cluster" in answer.text


def test_the_stream_carries_the_monitors_decisions_as_elastic_events(make_client):
    client = make_client()
    infra = create(client, body=elastic_without_machines())
    view = client.get(f"/orbis/infrastructures/{infra}/elastic",
                      headers={"Authorization": ALICE}).json()  # fmt: skip
    deadline = time.monotonic() + 20
    while not view["decisions"] and time.monotonic() < deadline:
        time.sleep(0.2)
        view = client.get(f"/orbis/infrastructures/{infra}/elastic",
                          headers={"Authorization": ALICE}).json()  # fmt: skip
    assert view["last_event"] > 0
    kinds, found = [], None
    with client.stream("GET", f"/orbis/infrastructures/{infra}/stream",
                       params={"follow": "1"}, headers={"Authorization": ALICE}) as stream:
        kind = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
                kinds.append(kind)
            elif line.startswith("data: ") and kind == "elastic":
                found = json.loads(line[6:])
                break
    assert found is not None, kinds
    assert found["action"] == "wait"
    assert found["reason"] == "waiting for the front-end 'front' to be configured"
    assert found["id"] <= view["last_event"] and found["at"]
    assert kinds[0] == "detail" and "elastic" in kinds
