"""Bounded work through the API (docs/limits.md): hostile templates are refused at once with a
4xx naming the limit, and a refused request leaves no row and no cloud resource behind."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from orbis import config
from orbis.api.app import create_app
from orbis.providers.sim import SimProvider
from orbis.store.schema import InfrastructureRow, NodeRow

from .conftest import ALICE, BOB, YAML

ADMIN = "id = im; type = InfrastructureManager; username = root; password = r00t"
RADL = {"Content-Type": "text/plain"}


def alias_bomb() -> str:
    """The "billion laughs": 9 levels of 9 aliases stand for 9^9 values, in 800 bytes."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]\n"
    return text


def tosca(count: int, name: str = "vm") -> str:
    return ("tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n"
            f"  node_templates:\n    {name}:\n      type: tosca.nodes.Compute\n"
            f"      capabilities:\n        scalable:\n          properties:\n"
            f"            count: {count}\n")  # fmt: skip


class Server:
    def __init__(self, client: TestClient, cloud: SimProvider) -> None:
        self.client, self.cloud = client, cloud

    def call(self, method: str, path: str, auth: str = ALICE, body: str | None = None,
             headers: dict[str, str] | None = None) -> Any:  # fmt: skip
        return self.client.request(method, path, content=body,
                                   headers={**(headers or YAML), "Authorization": auth})

    def created(self) -> tuple[int, int, int]:
        """(infrastructure rows, node rows, machines in the simulated cloud)."""
        store = self.client.app.state.service.store  # type: ignore[attr-defined]
        with store.session() as s:
            infras = s.scalar(select(func.count(InfrastructureRow.id)))
            nodes = s.scalar(select(func.count(NodeRow.id)))
        return int(infras or 0), int(nodes or 0), len(self.cloud.list_owned())


@pytest.fixture
def server(tmp_path) -> Iterator[Callable[..., Server]]:
    opened: list[TestClient] = []

    def make(**overrides: Any) -> Server:
        settings = replace(config.load(), home=tmp_path, db_url=f"sqlite:///{tmp_path / 'db'}",
                           admin_users=("root:r00t",), **overrides)  # fmt: skip
        cloud = SimProvider(tmp_path / "sim.db", latency=0, config_seconds=0)
        client = TestClient(create_app(settings, cloud))
        client.__enter__()
        opened.append(client)
        return Server(client, cloud)

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def refused(answer: Any, status: int, *names: str, took: float) -> None:
    assert answer.status_code == status, answer.text
    for name in names:
        assert name in answer.text
    assert took < 1.0


def timed(server: Server, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    answer = server.call(*args, **kwargs)
    return answer, time.perf_counter() - start


def test_alias_bomb_is_a_quick_400_naming_the_limit(server) -> None:
    s = server()
    head = "tosca_definitions_version: tosca_simple_yaml_1_0\n"
    answer, took = timed(s, "POST", "/infrastructures", body=head + alias_bomb())
    refused(answer, 400, "ORBIS_MAX_YAML_NODES", took=took)
    assert s.created() == (0, 0, 0)


def test_huge_count_is_refused_before_anything_is_created(server) -> None:
    s = server()
    for path in ("/infrastructures", "/infrastructures?dry_run=1", "/orbis/plan"):
        answer, took = timed(s, "POST", path, body=tosca(100_000_000))
        refused(answer, 403, "100 nodes per infrastructure (ORBIS_MAX_NODES_PER_INFRA)", took=took)
    radl = "system vm (cpu.count >= 1)\ndeploy vm 100000000\n"
    answer, took = timed(s, "POST", "/infrastructures", body=radl, headers=RADL)
    refused(answer, 403, "ORBIS_MAX_NODES_PER_INFRA", took=took)
    assert s.created() == (0, 0, 0)


def test_adding_past_the_quota_leaves_the_infrastructure_as_it_was(server) -> None:
    s = server()
    made = s.call("POST", "/infrastructures", body=tosca(2))
    assert made.status_code == 200, made.text
    infra = made.text.rsplit("/", 1)[-1]
    before = s.created()
    assert before == (1, 2, 2)
    update = ("topology_template:\n  node_templates:\n    vm:\n      capabilities:\n"
              "        scalable:\n          properties:\n            count: 100000000\n")
    answer, took = timed(s, "POST", f"/infrastructures/{infra}", body=update)
    refused(answer, 403, "ORBIS_MAX_NODES_PER_INFRA", took=took)
    radl = "system vm (cpu.count >= 1)\ndeploy vm 100000000\n"
    answer, took = timed(s, "POST", f"/infrastructures/{infra}", body=radl, headers=RADL)
    refused(answer, 403, "ORBIS_MAX_NODES_PER_INFRA", took=took)
    answer, took = timed(s, "POST", f"/orbis/plan?infId={infra}", body=update)
    refused(answer, 403, "ORBIS_MAX_NODES_PER_INFRA", took=took)
    assert s.created() == before
    assert "count: 2" in s.call("GET", f"/infrastructures/{infra}/tosca").text.replace("'", "")


def test_quota_per_user_counts_the_other_infrastructures(server, monkeypatch) -> None:
    monkeypatch.setenv("ORBIS_MAX_NODES_PER_USER", "3")
    s = server()
    assert s.call("POST", "/infrastructures", body=tosca(2)).status_code == 200
    answer, took = timed(s, "POST", "/infrastructures", body=tosca(2))
    refused(answer, 403, "at most 3 nodes per user (ORBIS_MAX_NODES_PER_USER)", took=took)
    assert s.created() == (1, 2, 2)
    assert s.call("POST", "/infrastructures", auth=BOB, body=tosca(2)).status_code == 200


def test_an_administrator_sets_one_users_quota(server) -> None:
    s = server()
    assert s.call("POST", "/infrastructures", body=tosca(1)).status_code == 200
    assert s.call("GET", "/orbis/quotas").status_code == 403  # alice is no administrator
    listed = s.call("GET", "/orbis/quotas", auth=ADMIN).json()["quotas"]
    alice = next(q for q in listed if q["name"] == "alice")
    assert (alice["nodes"], alice["max_nodes_per_infra"], alice["own"]) == (1, 100, False)
    body = '{"max_nodes_per_infra": 1, "max_nodes_per_user": 500}'
    json_type = {"Content-Type": "application/json"}
    assert s.call("PUT", f"/orbis/quotas/{alice['key']}", body=body,
                  headers=json_type).status_code == 403  # fmt: skip
    set_ = s.call("PUT", f"/orbis/quotas/{alice['key']}", auth=ADMIN, body=body, headers=json_type)
    assert set_.status_code == 200 and set_.json()["max_nodes_per_infra"] == 1
    answer = s.call("POST", "/infrastructures", body=tosca(2))
    assert answer.status_code == 403
    assert "at most 1 nodes per infrastructure" in answer.text
    assert "set for this user by an administrator" in answer.text
    assert s.call("POST", "/infrastructures", auth=BOB, body=tosca(2)).status_code == 200
    back = '{"max_nodes_per_infra": null, "max_nodes_per_user": null}'
    s.call("PUT", f"/orbis/quotas/{alice['key']}", auth=ADMIN, body=back, headers=json_type)
    assert s.call("POST", "/infrastructures", body=tosca(2)).status_code == 200


def test_catastrophic_filter_answers_promptly_and_re2_refusals_are_named(server) -> None:
    s = server()
    assert s.call("POST", "/infrastructures",
                  body=tosca(0) + "# " + "a" * 50_000 + "\n").status_code == 200  # fmt: skip
    answer, took = timed(s, "GET", "/infrastructures?filter=(a%2B)%2B%24")
    assert answer.status_code == 200 and took < 1.0
    answer, took = timed(s, "GET", "/infrastructures?filter=a(%3F%3Db)")
    refused(answer, 400, "linear-time engine (RE2)", took=took)
    answer, took = timed(s, "GET", "/infrastructures?filter=" + "a" * 2000)
    refused(answer, 400, "ORBIS_MAX_REGEX_LENGTH", took=took)


def test_random_and_document_size_refused_through_the_api(server, monkeypatch) -> None:
    s = server()
    body = ("tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  inputs:\n"
            "    pw: {type: string, default: 'random(1000000000)'}\n")
    answer, took = timed(s, "POST", "/infrastructures", body=body)
    refused(answer, 400, "ORBIS_MAX_RANDOM_LENGTH", took=took)
    monkeypatch.setenv("ORBIS_MAX_TEMPLATE_BYTES", "5000")
    answer, took = timed(s, "POST", "/infrastructures", body=tosca(1) + "#" * 6000)
    refused(answer, 400, "ORBIS_MAX_TEMPLATE_BYTES", took=took)
    assert s.created() == (0, 0, 0)


def big_tosca(nodes: int) -> str:
    """A valid template that takes seconds to read: many nodes, each with a few sections."""
    lines = [HEAD_TOSCA, "topology_template:", "  node_templates:"]
    for i in range(nodes):
        lines += [f"    vm{i}:", "      type: tosca.nodes.Compute", "      capabilities:",
                  "        host: {properties: {num_cpus: 2, mem_size: 4 GiB}}",
                  "        os: {properties: {type: linux, distribution: ubuntu}}"]  # fmt: skip
    return "\n".join(lines) + "\n"


HEAD_TOSCA = "tosca_definitions_version: tosca_simple_yaml_1_0"


@pytest.mark.serial  # latencies: not beside the parallel part's deployments
def test_a_template_past_the_cpu_cap_is_refused_and_others_keep_their_latency(
    server, monkeypatch
) -> None:
    monkeypatch.setenv("ORBIS_PARSE_CPU_SECONDS", "0.5")
    monkeypatch.setenv("ORBIS_MAX_TEMPLATE_BYTES", str(8 << 20))
    s = server(max_request_bytes=16 << 20)
    body = big_tosca(12_000)  # ~6 MB: several seconds of parsing
    outcome: dict[str, Any] = {}

    def hostile() -> None:
        outcome["answer"], outcome["took"] = timed(s, "POST", "/infrastructures", auth=BOB,
                                                   body=body)  # fmt: skip

    import threading

    thread = threading.Thread(target=hostile)
    thread.start()
    time.sleep(0.3)  # the hostile template is being read now
    latencies = []
    while thread.is_alive():
        answer, took = timed(s, "GET", "/infrastructures?filter=x")  # bypasses the hot cache
        assert answer.status_code == 200
        latencies.append(took)
        time.sleep(0.02)
    thread.join()
    answer = outcome["answer"]
    assert answer.status_code == 400, answer.text
    assert "ORBIS_PARSE_CPU_SECONDS" in answer.text
    assert outcome["took"] < 5  # the cap (0.5 s CPU), at worst the wall deadline (4 s)
    assert len(latencies) >= 3 and max(latencies) < 0.5, latencies
    assert s.created() == (0, 0, 0)
