"""Routes that outlive a reboot (a oneshot unit per node) and members that follow a central
point or a site router to a new address (OverlaySetup.follow, run by the reconciler)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from orbis.overlay import render, state
from orbis.overlay.model import CentralPoint, Member, Overlay
from orbis.overlay.setup import OverlaySetup, plan, remotes_of, routers_of, server_addresses
from orbis.store.repository import Store


def _row(name: str, vm_id: int, site: str, public: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(name=name, vm_id=vm_id, site=site, private_ip=f"10.0.{vm_id}.2",
                           public_ip=public, deleted=False)  # fmt: skip


OVERLAY = Overlay(
    [CentralPoint("cp", "front", "192.168.255.0/24"),
     CentralPoint("cpb", "cp-backup", "192.168.254.0/24")],
    [Member("router_b", "cp-backup", True, "cp"), Member("solo", "solo", False, "cp")])  # fmt: skip


def _rows(front_public: str) -> list[Any]:
    return [_row("front", 0, "A", front_public), _row("cp-backup", 1, "B", "172.16.0.3"),
            _row("worker-b", 3, "B"), _row("solo", 4, "C", "172.16.0.5")]  # fmt: skip


def test_routes_unit_sets_each_route_at_start_and_refuses_what_is_not_an_address() -> None:
    unit = render.routes_unit([("10.89.1.0/24", "10.89.2.3"), ("192.168.255.0/24", "10.89.2.3")])
    assert "Type=oneshot" in unit and "WantedBy=multi-user.target" in unit
    assert [line for line in unit.splitlines() if line.startswith("ExecStart=")][:2] == [
        "ExecStart=ip route replace 10.89.1.0/24 via 10.89.2.3 proto 77",
        "ExecStart=ip route replace 192.168.255.0/24 via 10.89.2.3 proto 77"]
    with pytest.raises(ValueError):
        render.routes_unit([("10.0.0.0/24; reboot", "10.0.0.1")])
    with pytest.raises(ValueError):
        render.routes_unit([("10.0.0.0/24", "10.0.0.1\nExecStart=/bin/sh")])


def test_remotes_primary_first_and_the_backup_names_only_the_primary() -> None:
    rows = _rows("172.16.0.2")
    layout = plan(OVERLAY, rows)
    assert server_addresses(layout) == ["172.16.0.2", "172.16.0.3"]
    assert remotes_of(layout, rows[3]) == ["172.16.0.2", "172.16.0.3"]
    assert remotes_of(layout, rows[1]) == ["172.16.0.2"]
    assert routers_of(layout) == {"A": "10.0.0.2", "B": "10.0.1.2"}


def test_follow_tells_the_members_a_moved_central_point_and_nothing_otherwise() -> None:
    store = Store("sqlite://")
    sent: list[tuple[str, dict[str, Any]]] = []

    async def on_node(infra: Any, row: Any, command: str, **options: Any) -> tuple[int, str]:
        sent.append((row.name, json.loads(options["stdin"])))
        return 0, ""

    setup = OverlaySetup(store, on_node, lambda row, text: None)
    infra, template = SimpleNamespace(id="i1"), SimpleNamespace(overlay=OVERLAY)
    issued = {str(vm): {"serial": vm + 2, "cn": f"n{vm}"} for vm in (0, 1, 4)}
    rows = _rows("172.16.0.2")
    st = state.OverlayState(ca_cert="x", issued=issued, remotes=server_addresses(plan(
        OVERLAY, rows)), routers=routers_of(plan(OVERLAY, rows)))  # fmt: skip
    state.save(store, "i1", st)
    asyncio.run(setup.follow(infra, template, rows))  # type: ignore[arg-type]
    assert sent == []  # nothing moved: not a single SSH
    moved = _rows("172.16.0.9")  # the primary made again elsewhere
    asyncio.run(setup.follow(infra, template, moved))  # type: ignore[arg-type]
    confs = {name: job["files"][f"{render.DIR}/client.conf"][0] for name, job in sent}
    assert sorted(confs) == ["cp-backup", "solo"]
    assert "remote 172.16.0.9 1194\nremote 172.16.0.3 1194" in confs["solo"]
    assert "172.16.0.2" not in confs["solo"] and "172.16.0.3" not in confs["cp-backup"]
    assert all(job["units"] == {render.CLIENT_UNIT_NAME: [f"{render.DIR}/client.conf"]}
               for _, job in sent)  # fmt: skip
    after = state.load(store, "i1")
    assert after is not None and after.remotes == ["172.16.0.9", "172.16.0.3"]
    sent.clear()
    asyncio.run(setup.follow(infra, template, moved))  # type: ignore[arg-type]
    assert sent == []  # told once
    # a state kept before remotes were: recorded, members left as their configuration made them
    state.save(store, "i1", state.OverlayState(ca_cert="x", issued=issued,
                                               routers=routers_of(plan(OVERLAY, rows))))
    asyncio.run(setup.follow(infra, template, moved))  # type: ignore[arg-type]
    again = state.load(store, "i1")
    assert sent == [] and again is not None and again.remotes == ["172.16.0.9", "172.16.0.3"]


def test_follow_gives_a_sites_nodes_their_routers_new_address() -> None:
    store = Store("sqlite://")
    sent: list[tuple[str, dict[str, Any]]] = []

    async def on_node(infra: Any, row: Any, command: str, **options: Any) -> tuple[int, str]:
        sent.append((row.name, json.loads(options["stdin"])))
        return 0, ""

    setup = OverlaySetup(store, on_node, lambda row, text: None)
    infra = SimpleNamespace(id="i1")
    template = SimpleNamespace(overlay=OVERLAY, computes={})
    rows = _rows("172.16.0.2")
    layout = plan(OVERLAY, rows)
    state.save(store, "i1", state.OverlayState(
        ca_cert="x", remotes=server_addresses(layout), routers={"A": "10.0.0.2", "B": "10.9.9.9"},
        site_subnets={"A": "10.0.0.0/16", "B": "10.1.0.0/16"}))  # fmt: skip
    asyncio.run(setup.follow(infra, template, rows))  # type: ignore[arg-type]
    assert [name for name, _ in sent] == ["worker-b"]
    unit = sent[0][1]["files"][f"/etc/systemd/system/{render.ROUTES_UNIT_NAME}"][0]
    assert "ExecStart=ip route replace 10.0.0.0/16 via 10.0.1.2" in unit
