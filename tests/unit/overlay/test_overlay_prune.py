"""Routes to sites that are gone are pruned: the overlay state forgets a site without a router
(no route, push or iroute to it any more), a node's routes unit removes the routes it set
before and no longer lists (run for real with `ip` in a network namespace of its own), and the
clouds are asked to drop the routes a router no longer carries (engine/overlay_routes.py)."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from orbis.engine.overlay_routes import remember_routes, stale_routes
from orbis.overlay import render, state
from orbis.overlay.model import CentralPoint, Member, Overlay
from orbis.overlay.pki import Authority
from orbis.overlay.setup import OverlaySetup, plan, routers_of, server_addresses
from orbis.store.repository import Store

SITE_A, SITE_B, SITE_C = "10.0.0.0/24", "10.0.1.0/24", "10.0.9.0/24"
OVERLAY = Overlay(
    [CentralPoint("cp", "front", "192.168.255.0/24"),
     CentralPoint("cpb", "cp-backup", "192.168.254.0/24")],
    [Member("router_b", "cp-backup", True, "cp"), Member("router_c", "router-c", True, "cp")])


def _row(name: str, vm_id: int, site: str, public: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(name=name, vm_id=vm_id, site=site, private_ip=f"10.0.{vm_id}.2",
                           public_ip=public, deleted=False, provider_id=f"p{vm_id}")  # fmt: skip


def _commands(unit: str) -> list[list[str]]:
    """The unit's ExecStart lines as systemd runs them (`$$` is a `$`)."""
    return [shlex.split(line.removeprefix("ExecStart=").replace("$$", "$"))
            for line in unit.splitlines() if line.startswith("ExecStart=")]  # fmt: skip


# run in a network namespace of its own: a link, a route the unit did not set, the unit of a
# node routing two sites and a pool's /32, then its unit once site C is gone and the router moved
IN_NETNS = """
import json, subprocess, sys
sh = lambda c: subprocess.run(c, shell=True, check=True, capture_output=True, text=True).stdout
sh("ip link add name va type veth peer name vb && ip link set va up && ip link set vb up && "
   "ip addr add 10.0.0.2/24 dev va && ip route add 172.20.0.0/16 via 10.0.0.9")
for number, unit in enumerate(json.loads(sys.argv[1])):
    for argv in unit:
        subprocess.run(argv, check=True, capture_output=True, timeout=10)
    print(sh("ip -4 route show"), end="|" if number == 0 else "")
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs root and unshare(1) for a network namespace")  # fmt: skip
def test_the_routes_unit_removes_the_routes_it_set_before_and_no_others() -> None:
    units = [_commands(render.routes_unit([(SITE_B, "10.0.0.1"), (SITE_C, "10.0.0.1"),
                                           ("192.168.255.1/32", "10.0.0.1")])),
             _commands(render.routes_unit([(SITE_B, "10.0.0.3")]))]  # fmt: skip
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", IN_NETNS, json.dumps(units)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip("no network namespace here")
    assert done.returncode == 0, done.stderr
    first, second = ({r.strip() for r in part.split("\n")} - {""}
                     for part in done.stdout.split("|"))  # fmt: skip
    ours = render.ROUTES_PROTO
    assert {f"{SITE_B} via 10.0.0.1 dev va proto {ours}",
            f"{SITE_C} via 10.0.0.1 dev va proto {ours}",
            f"192.168.255.1 via 10.0.0.1 dev va proto {ours}"} <= first  # fmt: skip
    assert f"{SITE_B} via 10.0.0.3 dev va proto {ours}" in second
    assert not any("10.0.9.0" in r or "192.168.255.1" in r for r in second), second
    assert "172.20.0.0/16 via 10.0.0.9 dev va" in second  # a route it did not set: kept


def test_a_site_whose_router_is_gone_is_no_longer_routed_pushed_or_served() -> None:
    store = Store("sqlite://")
    jobs: dict[str, dict[str, Any]] = {}

    async def on_node(infra: Any, row: Any, command: str, **options: Any) -> tuple[int, str]:
        if "stdin" in options:
            jobs[row.name] = json.loads(options["stdin"])
        return 0, ""

    setup = OverlaySetup(store, on_node, lambda row, text: None)
    infra, template = SimpleNamespace(id="i1"), SimpleNamespace(overlay=OVERLAY)
    rows = [_row("front", 0, "A", "172.16.0.2"), _row("cp-backup", 1, "B", "172.16.0.3"),
            _row("worker-a", 2, "A"), _row("router-c", 3, "C", "172.16.0.4")]  # fmt: skip
    ca = Authority.create("i1")
    issued = {str(r.vm_id): {"serial": r.vm_id + 2, "cn": f"n{r.vm_id}", "cert": "c",
                             "provider_id": r.provider_id} for r in rows if r.vm_id != 2}
    layout = plan(OVERLAY, rows)
    st = state.OverlayState(ca_cert=ca.cert_pem, ca_key_sealed=ca.key_pem, issued=issued,
                            site_subnets={"A": SITE_A, "B": SITE_B, "C": SITE_C},
                            remotes=server_addresses(layout), routers=routers_of(layout))
    state.save(store, "i1", st)
    # site C's router removed (its only node): a configuration run of the others
    rows[3].deleted = True
    failed = asyncio.run(setup.apply(infra, template, rows[:3], rows))  # type: ignore[arg-type]
    assert failed == set()
    assert state.load(store, "i1").site_subnets == {"A": SITE_A, "B": SITE_B}  # type: ignore[union-attr]
    d = render.DIR
    for server in ("front", "cp-backup"):
        conf = jobs[server]["files"][f"{d}/server.conf"][0]
        assert "10.0.9.0" not in conf and "route 10.0." in conf
        ccd = [t for p, (t, _) in jobs[server]["files"].items() if p.startswith(f"{d}/ccd/")]
        assert not any("10.0.9.0" in t for t in ccd)
    # router-c's ccd entry goes from the servers (front's members: cp-backup only now)
    assert jobs["front"]["prune"][f"{d}/ccd"] == ["n1"]
    assert jobs["cp-backup"]["prune"][f"{d}/ccd"] == []
    unit = jobs["worker-a"]["files"][f"/etc/systemd/system/{render.ROUTES_UNIT_NAME}"][0]
    assert SITE_B in unit and "10.0.9.0" not in unit


def test_follow_prunes_a_gone_sites_routes_without_a_configuration_run() -> None:
    store = Store("sqlite://")
    jobs: dict[str, dict[str, Any]] = {}

    async def on_node(infra: Any, row: Any, command: str, **options: Any) -> tuple[int, str]:
        jobs[row.name] = json.loads(options["stdin"])
        return 0, ""

    setup = OverlaySetup(store, on_node, lambda row, text: None)
    rows = [_row("front", 0, "A", "172.16.0.2"), _row("cp-backup", 1, "B", "172.16.0.3"),
            _row("worker-a", 2, "A"), _row("router-c", 3, "C", "172.16.0.4")]  # fmt: skip
    layout = plan(OVERLAY, rows)
    state.save(store, "i1", state.OverlayState(
        ca_cert="x", site_subnets={"A": SITE_A, "B": SITE_B, "C": SITE_C},
        remotes=server_addresses(layout), routers=routers_of(layout)))  # fmt: skip
    rows[3].deleted = True  # removed without a reconfiguration (context off)
    asyncio.run(setup.follow(SimpleNamespace(id="i1"), SimpleNamespace(overlay=OVERLAY),  # type: ignore[arg-type]
                             rows))  # fmt: skip
    unit = jobs["worker-a"]["files"][f"/etc/systemd/system/{render.ROUTES_UNIT_NAME}"][0]
    assert SITE_B in unit and "10.0.9.0" not in unit
    assert state.load(store, "i1").site_subnets == {"A": SITE_A, "B": SITE_B}  # type: ignore[union-attr]


def test_the_cloud_is_asked_to_drop_what_a_router_no_longer_routes() -> None:
    known = state.OverlayState()
    a, b = _row("front", 0, "A"), _row("cp-backup", 1, "B")
    assert stale_routes(known, a, [SITE_B, SITE_C]) == []  # nothing routed yet
    remember_routes(known, [(a, [SITE_B, SITE_C]), (b, [SITE_A, SITE_C])], failed={1})
    # a refused one: what was asked may be partly there
    assert known.cloud_routes == {"p0": [SITE_B, SITE_C], "p1": [SITE_A, SITE_C]}
    assert stale_routes(known, a, [SITE_B]) == [SITE_C]  # site C gone
    assert stale_routes(known, b, [SITE_A, SITE_C]) == []
    # a router made anew (another machine): its predecessor's routes went with it
    fresh = SimpleNamespace(**{**vars(a), "provider_id": "p9"})
    assert stale_routes(known, fresh, [SITE_B]) == []
    remember_routes(known, [(fresh, [SITE_B])], failed=set())
    assert known.cloud_routes == {"p9": [SITE_B]}  # records of machines not routing now go
