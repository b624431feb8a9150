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
from orbis.overlay.setup import OverlaySetup, mtu_of, plan, routers_of, server_addresses
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


def _four_nodes() -> tuple[list[Any], Authority, dict[str, dict[str, Any]], Any]:
    """front (site A) and cp-backup (B), the two servers, worker-a (A) and router-c (C): their
    rows, the CA, the certificates issued (all but worker-a's, a site node) and the layout."""
    rows = [_row("front", 0, "A", "172.16.0.2"), _row("cp-backup", 1, "B", "172.16.0.3"),
            _row("worker-a", 2, "A"), _row("router-c", 3, "C", "172.16.0.4")]  # fmt: skip
    issued = {str(r.vm_id): {"serial": r.vm_id + 2, "cn": f"n{r.vm_id}", "cert": "c",
                             "provider_id": r.provider_id} for r in rows if r.vm_id != 2}
    return rows, Authority.create("i1"), issued, plan(OVERLAY, rows)


def test_a_site_whose_router_is_gone_is_no_longer_routed_pushed_or_served() -> None:
    store = Store("sqlite://")
    jobs: dict[str, dict[str, Any]] = {}

    async def on_node(infra: Any, row: Any, command: str, **options: Any) -> tuple[int, str]:
        if "stdin" in options:
            jobs[row.name] = json.loads(options["stdin"])
        return 0, ""

    setup = OverlaySetup(store, on_node, lambda row, text: None)
    infra, template = SimpleNamespace(id="i1"), SimpleNamespace(overlay=OVERLAY)
    rows, ca, issued, layout = _four_nodes()
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


# -- the tunnel for the sites' links (render.tuning_for): measured on the routers -------------

LINKS_OUT = (
    "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
    "2: eth0    inet 10.0.{vm}.2/24 brd 10.0.{vm}.255 scope global eth0\\       valid_lft\n"
    "3: eth1    inet 172.16.0.{vm}/24 brd 172.16.0.255 scope global eth1\\       valid_lft\n"
    "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT\n"
    "2: eth0@if12: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu {mtu} qdisc noqueue state UP mode\n"
    "3: eth1@if13: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode\n")


def test_mtu_of_reads_the_link_holding_the_address() -> None:
    out = LINKS_OUT.format(vm=1, mtu=1450)
    assert mtu_of("10.0.1.2", out) == 1450 and mtu_of("172.16.0.1", out) == 1500
    assert mtu_of("10.0.1.20", out) is None and mtu_of(None, out) is None


def test_jumbo_sites_get_the_jumbo_tunnel_and_small_links_one_that_fits_a_frame() -> None:
    assert render.tuning_for([]) == render.tuning_for([9000, 8950]) == render.Tuning()
    small = render.tuning_for([9000, 1450])  # the smallest site link decides
    assert (small.tun_mtu, small.mssfix, small.mssfix_mtu) == (1500, 1450, True)
    conf = render.client_conf(["172.16.0.2"], small)
    assert "tun-mtu 1500\n" in conf and "mssfix 1450 mtu\n" in conf
    assert "tun-mtu 9000\nmssfix 0\n" in render.client_conf(["172.16.0.2"])


def test_a_site_with_1500_byte_links_retunes_every_member() -> None:
    """Site B's links measured at 1500 on its router: the servers and every member, not only
    this run's targets, get the tunnel for 1500-byte links; site B gone again: jumbo."""
    store = Store("sqlite://")
    jobs: dict[str, dict[str, Any]] = {}
    mtus = {0: 9000, 1: 1500, 3: 9000}

    async def on_node(infra: Any, row: Any, command: str, **options: Any) -> tuple[int, str]:
        if "stdin" in options:
            jobs[row.name] = json.loads(options["stdin"])
        if "ip -o link show" in command:
            return 0, LINKS_OUT.format(vm=row.vm_id, mtu=mtus[row.vm_id])
        return 0, ""

    setup = OverlaySetup(store, on_node, lambda row, text: None)
    infra, template = SimpleNamespace(id="i1"), SimpleNamespace(overlay=OVERLAY)
    rows, ca, issued, layout = _four_nodes()
    state.save(store, "i1", state.OverlayState(
        ca_cert=ca.cert_pem, ca_key_sealed=ca.key_pem, issued=issued,
        remotes=server_addresses(layout), routers=routers_of(layout)))  # fmt: skip
    d = render.DIR
    asyncio.run(setup.apply(infra, template, [rows[0]], rows))  # type: ignore[arg-type]
    st = state.load(store, "i1")
    assert st is not None and st.site_mtus == {"A": 9000, "B": 1500, "C": 9000}
    assert st.site_subnets == {"A": "10.0.0.0/24", "B": "10.0.1.0/24", "C": "10.0.3.0/24"}
    assert "tun-mtu 1500\n" in jobs["front"]["files"][f"{d}/server.conf"][0]
    for member in ("cp-backup", "router-c"):  # not targets of this run: rewritten all the same
        assert "mssfix 1500 mtu\n" in jobs[member]["files"][f"{d}/client.conf"][0], member
    jobs.clear()
    rows[1].deleted = True  # site B's router gone: the jumbo tunnel again, for everyone
    asyncio.run(setup.apply(infra, template, [rows[0]], rows))  # type: ignore[arg-type]
    assert "tun-mtu 9000\n" in jobs["front"]["files"][f"{d}/server.conf"][0]
    assert "tun-mtu 9000\n" in jobs["router-c"]["files"][f"{d}/client.conf"][0]
