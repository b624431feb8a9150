"""The live progress stream end to end: a client connected to
/orbis/infrastructures/ID/stream while two real nodes deploy sees each node's transitions in
order up to `configured`, whole views after changes, and `end` once it settles."""

from __future__ import annotations

import json

import pytest

from orbis.testing.server import orbis_server

pytestmark = [pytest.mark.e2e]

TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_0
topology_template:
  node_templates:
    app:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: vm}]
      interfaces:
        Standard:
          configure:
            implementation: |
              - hosts: all
                gather_facts: false
                tasks: [{name: touch, ansible.builtin.command: touch /root/done}]
    vm:
      type: tosca.nodes.Compute
      capabilities: {scalable: {properties: {count: 2}}}
"""


def read_stream(lines: object) -> list[tuple[str, dict]]:
    """(kind, data) of each server-sent event, until `end`."""
    events: list[tuple[str, dict]] = []
    kind = ""
    for line in lines:  # type: ignore[attr-defined]
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            events.append((kind, json.loads(line[5:])))
            if kind == "end":
                break
    return events


def test_stream_carries_each_node_to_configured(engine_url: str) -> None:
    with orbis_server(engine_url) as server, server.client() as api:
        headers = {"Content-Type": "text/yaml", "Accept": "application/json"}
        created = api.post("/infrastructures", content=TEMPLATE, headers=headers)
        assert created.status_code == 200, created.text
        infra_id = created.json()["uri"].rsplit("/", 1)[-1]
        path = f"/orbis/infrastructures/{infra_id}/stream"
        sse = {"Accept": "text/event-stream"}
        with api.stream("GET", path, headers=sse, timeout=300) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = read_stream(response.iter_lines())

        kinds = [kind for kind, _ in events]
        assert kinds[0] == "detail" and kinds[-1] == "end", kinds
        assert events[-1][1]["state"] == "configured"
        node_states: dict[int, list[str]] = {}
        for kind, data in events:
            if kind == "event" and data["subject"] == "node":
                node_states.setdefault(data["vm_id"], []).append(data["to"])
        assert sorted(node_states) == [0, 1], node_states
        for vm_id, states in node_states.items():
            assert states[-1] == "configured", (vm_id, states)
            assert "running" in states and states.index("running") < states.index("configured")
        ids = [data["id"] for kind, data in events if kind == "event"]
        assert ids == sorted(ids) and len(ids) == len(set(ids))  # resumable: ordered, unique
        last_view = [data for kind, data in events if kind == "detail"][-1]
        assert {n["state"] for n in last_view["nodes"]} == {"configured"}
        api.delete(f"/infrastructures/{infra_id}")
