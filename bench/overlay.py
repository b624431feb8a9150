"""The private overlay's figures (issue 13): TCP throughput (iperf3, 10 s) and round-trip time
between worker-a (site A) and worker-b (site B) of examples/overlay-two-sites.yaml through the
overlay, next to the same measure between two nodes on one shared network without it; data
channel variants (cipher, fast-io, buffers, MTU, the workers' link MTU, parallel streams)
rewritten on the tunnel nodes in place, measured in turn BENCH_ROUNDS times (default 3) so
that each sees the same load from other work, medians printed, with the CPU seconds per Gbit
the four containers on the path used (a figure less sensitive to that load); and the time to
fail over to the backup central point (the primary's container killed).

Path through the overlay: worker-a → front (site A's router and the primary central point:
encrypts) → UDP over the "internet" network → cp-backup (site B's router: decrypts) → worker-b.
Real containers, nodes deployed by Orbis; iperf3 from the Debian mirror. Needs the container
engine and the node/runner images (DOCKER_HOST as for the e2e tests).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker
import yaml

from orbis.auth import identify
from orbis.providers.base import LABEL_INFRASTRUCTURE, LABEL_VM_ID
from orbis.providers.local_sites import SITE_MTU

REPO = Path(__file__).resolve().parents[1]
AUTH = ("id = im; type = InfrastructureManager; username = bench; password = b\n"
        "id = siteA; type = LocalSite\nid = siteB; type = LocalSite")  # fmt: skip
PAIR = """network net (outbound = 'yes')
system n (net_interface.0.connection = 'net')
deploy n 2
"""
CONF = "/etc/orbis-overlay"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
# settings before this measure (issue 13 as first landed)
BEFORE = "s/^tun-mtu .*/tun-mtu 1500/; s/^mssfix .*/mssfix 1450/"
BIG_BUFFERS = ("s/^txqueuelen .*/txqueuelen 1000/; s/^sndbuf .*/sndbuf 4194304/; "
               "s/^rcvbuf .*/rcvbuf 4194304/")  # fmt: skip
# (label, sed script for server.conf/client.conf of the tunnel nodes, the workers' MTU (None:
# their site's, 9000), iperf3 streams, GRO on the workers' and routers' site links); measured
# in turn, ROUNDS times, medians reported. BENCH_SET=links1500: the variants for sites whose
# private networks have 1500-byte links (what most clouds give), next to the chosen one.
Variant = tuple[str, str, int | None, int, bool]
CHACHA = "s/^data-ciphers .*/data-ciphers CHACHA20-POLY1305/"
VARIANTS_ALL: list[Variant] = [
    ("chosen: tun-mtu 9000, mssfix 0, 512 KiB buffers, txqueuelen 500", "", None, 1, False),
    ("chosen, 4 streams (-P4)", "", None, 4, False),
    ("before: tun-mtu 1500, mssfix 1450", BEFORE, None, 1, False),
    ("chosen, workers' links at 1500", "", 1500, 1, False),
    ("before, workers' links at 1500", BEFORE, 1500, 1, False),
    ("4 MiB buffers, txqueuelen 1000", BIG_BUFFERS, None, 1, False),
    ("before + 4 MiB buffers, txqueuelen 1000, workers at 1500", f"{BEFORE}; {BIG_BUFFERS}",
     1500, 1, False),
    ("AES-128-GCM", "s/^data-ciphers .*/data-ciphers AES-128-GCM/", None, 1, False),
    ("CHACHA20-POLY1305", CHACHA, None, 1, False),
    ("tun-mtu 48000", "s/^tun-mtu .*/tun-mtu 48000/", None, 1, False),
    ("no fast-io", "/^fast-io/d", None, 1, False),
]
VARIANTS_1500: list[Variant] = [
    ("chosen (jumbo sites, for reference)", "", None, 1, False),
    ("links 1500: chosen (tun-mtu 9000: datagrams IP-fragmented)", "", 1500, 1, False),
    ("links 1500: tun-mtu 1500, mssfix 1450 (no fragments)", BEFORE, 1500, 1, False),
    ("links 1500: chosen + GRO on the site links", "", 1500, 1, True),
    ("links 1500: chosen + CHACHA20-POLY1305", CHACHA, 1500, 1, False),
    ("links 1500: chosen + 4 MiB buffers, txqueuelen 1000", BIG_BUFFERS, 1500, 1, False),
    ("links 1500: chosen, 4 streams (-P4)", "", 1500, 4, False),
]
VARIANTS = VARIANTS_1500 if os.environ.get("BENCH_SET") == "links1500" else VARIANTS_ALL


PATH_NAMES = ("worker-a", "front", "cp-backup", "worker-b")


def overlay_template() -> str:
    """The example plus `solo-a`, a standalone client on site A that outlives the primary
    (site A's router), so that traffic between sites remains to fail over."""
    doc = yaml.safe_load((REPO / "examples/overlay-two-sites.yaml").read_text())
    nodes = doc["topology_template"]["node_templates"]
    nodes["solo-a"] = {"type": "tosca.nodes.Compute",
                       "capabilities": {"endpoint": {"properties": {"network_name": "PUBLIC"}}}}
    nodes["solo_a_client"] = {"type": "tosca.nodes.indigo.VR.Client",
                              "requirements": [{"host": "solo-a"},
                                               {"central_point": "central_point"}]}
    doc["topology_template"]["policies"][0]["site_a"]["targets"].append("solo-a")
    return yaml.safe_dump(doc, sort_keys=False)


def container(engine: docker.DockerClient, infra: str, vm_id: int):  # type: ignore[no-untyped-def]
    (found,) = engine.containers.list(
        filters={"label": [f"{LABEL_INFRASTRUCTURE}={infra}", f"{LABEL_VM_ID}={vm_id}"]})
    return found


def run(c, command: str) -> str:  # type: ignore[no-untyped-def]
    result = c.exec_run(["bash", "-c", command])
    if result.exit_code != 0:
        raise RuntimeError(f"{command}: {result.output.decode(errors='replace')[-500:]}")
    return result.output.decode(errors="replace")


def install_iperf(*nodes) -> None:  # type: ignore[no-untyped-def]
    for c in nodes:
        run(c, "command -v iperf3 >/dev/null || { apt-get update -q && DEBIAN_FRONTEND="
               "noninteractive apt-get install -y -q --no-install-recommends iperf3 "
               "iputils-ping; } >/dev/null 2>&1")  # fmt: skip
        run(c, "pgrep iperf3 >/dev/null || iperf3 -s -D")


def install_ethtool(*nodes) -> None:  # type: ignore[no-untyped-def]
    for c in nodes:
        run(c, "command -v ethtool >/dev/null || { apt-get update -q && DEBIAN_FRONTEND="
               "noninteractive apt-get install -y -q --no-install-recommends ethtool; } "
               ">/dev/null 2>&1")  # fmt: skip


def set_gro(nodes, on: bool) -> None:  # type: ignore[no-untyped-def]
    """GRO on every ethernet link of the nodes (a veth aggregates only with it on)."""
    for c in nodes:
        run(c, "for i in $(ls /sys/class/net | grep ^eth); do ethtool -K $i gro "
               f"{'on' if on else 'off'} 2>/dev/null; done; true")  # fmt: skip


def cpu_seconds(containers) -> float | None:  # type: ignore[no-untyped-def]
    """CPU seconds the containers used so far (cgroup v1 or v2 accounting), None if unknown."""
    each = cpu_each(containers)
    return None if each is None else sum(each)


def cpu_each(containers) -> list[float] | None:  # type: ignore[no-untyped-def]
    """CPU seconds each container used so far, None if unknown."""
    total: list[float] = []
    for c in containers:
        for path in (f"/sys/fs/cgroup/cpuacct/libpod_parent/libpod-{c.id}/cpuacct.usage",
                     f"/sys/fs/cgroup/libpod_parent/libpod-{c.id}/cpu.stat",
                     f"/sys/fs/cgroup/machine.slice/libpod-{c.id}.scope/cpu.stat"):  # fmt: skip
            if os.path.exists(path):
                text = Path(path).read_text()
                total.append(int(text) / 1e9 if path.endswith("usage") else
                             int(text.split()[1]) / 1e6)  # usage_usec first  # fmt: skip
                break
        else:
            return None
    return total


def measure(client, server_ip: str, streams: int = 1,  # type: ignore[no-untyped-def]
            on_path=()) -> tuple[float, float, float | None, list[float]]:  # fmt: skip
    """(Mbit/s over SECONDS, mean RTT in ms over 20 pings, CPU seconds per Gbit moved of the
    containers `on_path`, and the share of one CPU each of them used during the run)."""
    before, started = cpu_each(on_path), time.monotonic()
    out = json.loads(run(client, f"iperf3 -c {server_ip} -t {SECONDS} -P {streams} -J"))
    after, took = cpu_each(on_path), time.monotonic() - started
    mbits = out["end"]["sum_received"]["bits_per_second"] / 1e6
    per_gbit, shares = None, []
    if before is not None and after is not None:  # the whole run's CPU, over the bits moved
        per_gbit = (sum(after) - sum(before)) / (mbits * took / 1000)
        shares = [(a - b) / took for a, b in zip(after, before, strict=True)]
    ping = run(client, f"ping -c 20 -i 0.2 -q {server_ip}")
    rtt = float(ping.strip().splitlines()[-1].split("=")[1].split("/")[1])
    return mbits, rtt, per_gbit, shares


def retune(nodes, edit: str) -> None:  # type: ignore[no-untyped-def]
    """Apply a sed edit to the tunnel configurations, restart the tunnels and wait."""
    for c in nodes:
        run(c, f"cd {CONF} && for f in server.conf client.conf; do [ -f $f.orig ] || "
               "{ [ -f $f ] && cp $f $f.orig; }; [ -f $f.orig ] && cp $f.orig $f; done; true")
        if edit:
            run(c, f"cd {CONF} && for f in server.conf client.conf; do [ -f $f ] && "
                   f"sed -i '{edit}' $f; done; true")  # fmt: skip
        run(c, "systemctl restart orbis-overlay-server 2>/dev/null; "
               "systemctl restart orbis-overlay-client 2>/dev/null; true")  # fmt: skip


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def main() -> int:
    from cryptography.fernet import Fernet

    from orbis.providers.local import LocalProvider
    from orbis.secrets import Sealer
    from orbis.service import OrbisService
    from orbis.store.repository import Store

    url = os.environ.get("DOCKER_HOST")
    if not url:
        print("DOCKER_HOST is not set (see ./scripts/engine.sh start)", file=sys.stderr)
        return 2
    engine = docker.DockerClient(base_url=url)
    tmp = Path(tempfile.mkdtemp(prefix="orbis-bench-overlay-"))
    svc = OrbisService(Store(f"sqlite:///{tmp / 'orbis.db'}"), LocalProvider(base_url=url),
                       tmp / "work")  # fmt: skip
    svc.configure_access(Sealer(Fernet.generate_key()))
    await svc.resume()
    who = identify(AUTH)[0]
    made: list[str] = []
    try:
        started = time.monotonic()
        infra = await svc.create(who, overlay_template())
        made.append(infra)
        pair = await svc.create(who, PAIR)
        made.append(pair)
        assert await svc.wait_reconciled(infra, timeout=600)
        assert await svc.wait_reconciled(pair, timeout=600)
        print(f"deployed the two-site overlay and the pair in {time.monotonic() - started:.0f} s")
        nodes = {n.name: n for n in svc.store.nodes(infra)}
        bad = {n: r.state for n, r in nodes.items() if r.state != "configured"}
        if bad:
            print(f"not configured: {bad}", file=sys.stderr)
            return 1
        wa, wb = (container(engine, infra, nodes[n].vm_id) for n in ("worker-a", "worker-b"))
        tunnels = [container(engine, infra, nodes[n].vm_id)
                   for n in ("front", "cp-backup", "solo-a")]  # fmt: skip
        p0, p1 = (container(engine, pair, n.vm_id) for n in svc.store.nodes(pair))
        p1_ip = next(n.private_ip for n in svc.store.nodes(pair) if n.vm_id == 1)
        install_iperf(wa, wb, p0, p1)
        mbits, rtt, _, _ = measure(p0, str(p1_ip))
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"\none shared network, no overlay: {mbits:8.0f} Mbit/s  RTT {rtt:.3f} ms")
        path = (wa, tunnels[0], tunnels[1], wb)
        if any(v[4] for v in VARIANTS):
            install_ethtool(*path)
        found: dict[str, list[tuple[float, float, float | None, list[float]]]] = {
            v[0]: [] for v in VARIANTS}
        for number in range(ROUNDS):  # variants in turn, so that each sees the same load
            for label, edit, mtu, streams, gro in VARIANTS:
                retune(tunnels, edit)
                if any(v[4] for v in VARIANTS):
                    set_gro(path, gro)
                for w in (wa, wb):
                    run(w, f"ip link set eth0 mtu {mtu or SITE_MTU}")
                run(wa, f"for i in $(seq 60); do ping -c1 -W1 {nodes['worker-b'].private_ip} "
                        ">/dev/null && exit 0; sleep 0.5; done; exit 1")  # fmt: skip
                found[label].append(measure(wa, str(nodes["worker-b"].private_ip), streams,
                                            path))  # fmt: skip
                got = found[label][-1]
                cpus = " ".join(f"{n} {x:.2f}" for n, x in zip(PATH_NAMES, got[3], strict=False))
                print(f"round {number + 1}: {label:62s} {got[0]:5.0f} Mbit/s "
                      f"(load {os.getloadavg()[0]:.1f}; CPUs used: {cpus})",
                      flush=True)  # fmt: skip
        print(f"\nmedians of {ROUNDS} rounds, worker-a → worker-b, iperf3 {SECONDS} s:")
        for label, runs in found.items():
            cpu = [r[2] for r in runs if r[2] is not None]
            print(f"overlay, {label:62s}: {median([r[0] for r in runs]):5.0f} Mbit/s "
                  f"(runs {', '.join(f'{r[0]:.0f}' for r in runs)})  "
                  f"RTT {median([r[1] for r in runs]):.3f} ms  "
                  f"CPU {median(cpu):.2f} s/Gbit  CPUs used: " + " ".join(
                      f"{n} {median([r[3][i] for r in runs if r[3]]):.2f}"
                      for i, n in enumerate(PATH_NAMES)))  # fmt: skip
        for w in (wa, wb):
            run(w, f"ip link set eth0 mtu {SITE_MTU}")
        retune(tunnels, "")
        if any(v[4] for v in VARIANTS):
            set_gro(path, False)
        # worker-b (site B) → solo-a (site A) on the backup's pool once front is killed
        target = f"192.168.254.{10 + nodes['solo-a'].vm_id}"
        solo = tunnels[2]
        try:
            run(wb, f"for i in $(seq 60); do ping -c1 -W1 192.168.255.{10 + nodes['solo-a'].vm_id}"
                    " >/dev/null && exit 0; sleep 0.5; done; exit 1")  # tunnels restarted above
        except RuntimeError:
            print(run(solo, "ip -o -4 addr; journalctl -u orbis-overlay-client --no-pager | "
                            "tail -n 30"))  # fmt: skip
            print(run(tunnels[1], "ip -o -4 addr; systemctl status orbis-overlay-server "
                                  "--no-pager | tail -n 5"))  # fmt: skip
            raise
        container(engine, infra, nodes["front"].vm_id).kill()
        killed = time.monotonic()
        run(wb, f"for i in $(seq 300); do ping -c1 -W0.2 {target} >/dev/null && exit 0; "
                "sleep 0.05; done; exit 1")  # fmt: skip
        print(f"\nfail-over (front's container killed → worker-b reaches solo-a through the "
              f"backup): {time.monotonic() - killed:.1f} s")
        return 0
    finally:
        for infra_id in made:
            await svc.destroy(who, infra_id)
        await svc.shutdown()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
