"""OpenVPN configurations, ccd entries and route commands of an overlay's nodes (pure text).

Paths on the nodes live under DIR; the tunnels are `orbis-srv` (a central point's server) and
`orbis-cli` (a member's client, also on the backup central point towards the primary).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from orbis.overlay.model import PORT, CentralPoint

DIR = "/etc/orbis-overlay"
SERVER_DEV, CLIENT_DEV = "orbis-srv", "orbis-cli"
# a backup central point's kernel routes to other sites lose to those its own client tunnel
# learns from the primary while that one is up (lower metric wins)
BACKUP_ROUTE_METRIC = 50
# site links up to this many bytes get the tunnel for 1500-byte links (tuning_for)
JUMBO_ABOVE = 1500
UNIT = """[Unit]
Description=Orbis overlay ({what})
After=network-online.target

[Service]
ExecStart=/usr/sbin/openvpn --cd {dir} --config {conf}
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class Tuning:
    """Data-channel settings (bench/overlay.py measured the choice, docs/overlay.md)."""

    ciphers: str = "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305"
    # the cost is per packet: a jumbo tunnel carries jumbo site packets whole; the datagrams
    # are IP-fragmented on the 1500-byte path between sites, and TCP's MSS follows each
    # path's MTU (no clamping: mssfix 0). Sites with 1500-byte links: tuning_for
    tun_mtu: int = 9000
    mssfix: int = 0
    mssfix_mtu: bool = False  # mssfix counts the IP and UDP headers (OpenVPN 2.6's `mtu`)
    # sndbuf/rcvbuf, bytes, and the packets the tun device holds for OpenVPN: with jumbo
    # packets, larger (4 MiB, 1000) only lengthened the queues (measured, docs/overlay.md)
    buffers: int = 1 << 19
    txqueuelen: int = 500
    fast_io: bool = True
    ping: int = 1  # seconds between keepalives
    ping_restart: int = 4  # a client gives a silent server up after this many seconds
    poll_timeout: int = 2  # seconds a client waits for one server before the next


def tuning_for(site_mtus: Iterable[int]) -> Tuning:
    """The tunnel for the sites' private links, as measured on their routers: jumbo links get
    the jumbo tunnel (Tuning's defaults); when any site's links carry 1500 bytes or less (most
    clouds: 1500, OpenStack's VXLAN networks 1450), its packets are that small anyway, so a
    large tunnel MTU gains nothing there and its datagrams would be IP-fragmented between
    sites (which some paths drop): tun-mtu 1500, and TCP's MSS clamped so that a tunnel
    datagram, headers included, fits one frame of the smallest site link (docs/overlay.md)."""
    known = [m for m in site_mtus if m > 0]
    if not known or min(known) > JUMBO_ABOVE:
        return Tuning()
    return Tuning(tun_mtu=1500, mssfix=max(min(known), 576), mssfix_mtu=True)


def _mask(cidr: str) -> tuple[str, str]:
    net = ipaddress.IPv4Network(cidr)
    return str(net.network_address), str(net.netmask)


def _common(t: Tuning) -> list[str]:
    lines = ["proto udp", "dev-type tun", "topology subnet", "persist-key",
             f"ca {DIR}/ca.crt", f"cert {DIR}/node.crt", f"key {DIR}/node.key",
             f"data-ciphers {t.ciphers}", "tls-version-min 1.2",
             f"tun-mtu {t.tun_mtu}", f"mssfix {t.mssfix}{' mtu' if t.mssfix_mtu else ''}",
             f"txqueuelen {t.txqueuelen}",
             f"sndbuf {t.buffers}", f"rcvbuf {t.buffers}", "verb 3"]  # fmt: skip
    return lines + (["fast-io"] if t.fast_io else [])


def server_conf(cp: CentralPoint, other_sites: list[str], *, backup: bool,
                tuning: Tuning = Tuning()) -> str:  # fmt: skip
    """A central point's server: `other_sites` are the subnets of sites it is not on (a
    kernel route into the tunnel each; ccd iroutes say which client carries which)."""
    net, mask = _mask(cp.subnet)
    lines = [f"# Orbis overlay: {'backup' if backup else 'primary'} central point",
             "mode server", "tls-server", f"dev {SERVER_DEV}", f"port {PORT}",
             f"server {net} {mask}", "dh none", f"crl-verify {DIR}/crl.pem",
             "remote-cert-tls client", f"client-config-dir {DIR}/ccd", "ccd-exclusive",
             "client-to-client", f"keepalive {tuning.ping} {tuning.ping_restart}",
             "max-clients 250", f"status /run/orbis-overlay-{SERVER_DEV}.status 5",
             *_common(tuning)]  # fmt: skip
    lines.remove("mode server")  # `server` implies it; kept above for the reader only
    for cidr in other_sites:
        site_net, site_mask = _mask(cidr)
        metric = f" vpn_gateway {BACKUP_ROUTE_METRIC}" if backup else ""
        lines.append(f"route {site_net} {site_mask}{metric}")
    return "\n".join(lines) + "\n"


def client_conf(remotes: list[str], tuning: Tuning = Tuning()) -> str:
    """A member's client: the primary central point first, then the backup."""
    lines = ["# Orbis overlay: member", "client", "tls-client", f"dev {CLIENT_DEV}", "nobind",
             "remote-cert-tls server", *(f"remote {r} {PORT}" for r in remotes),
             "resolv-retry infinite",
             f"server-poll-timeout {tuning.poll_timeout}", "connect-retry 1 2",
             *_common(tuning)]  # fmt: skip
    return "\n".join(lines) + "\n"


def ccd_entry(cp: CentralPoint, vm_id: int, own_site: str | None,
              site_subnets: dict[str, str], *, routes_site: bool) -> str:  # fmt: skip
    """What central point `cp` tells member `vm_id`: its fixed address, its site's subnet
    when it routes it (`iroute`) and routes to every other site."""
    lines = [f"ifconfig-push {cp.client_address(vm_id)} {cp.network.netmask}"]
    if routes_site and own_site in site_subnets:
        lines.append("iroute {} {}".format(*_mask(site_subnets[own_site])))
    for site, cidr in sorted(site_subnets.items()):
        if site != own_site:
            lines.append('push "route {} {}"'.format(*_mask(cidr)))
    return "\n".join(lines) + "\n"


ROUTES_UNIT = """[Unit]
Description=Orbis overlay (routes to the other sites)
After=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
{starts}

[Install]
WantedBy=multi-user.target
"""


# the routes the unit sets carry this protocol number (unassigned in iproute2's rt_protos), so
# that it can tell them from others and remove those it set before and no longer wants
ROUTES_PROTO = 77


def routes_unit(pairs: list[tuple[str, str]]) -> str:
    """A node's routes (CIDR, via) as a oneshot unit: set when it starts, so at every boot;
    then the routes it set before that are not among them (a site gone, a router moved) are
    removed, after the new ones are in place (no moment without a route)."""
    nets = [ipaddress.IPv4Network(cidr) for cidr, _ in pairs]
    starts = [f"ExecStart=ip route replace {net} via {ipaddress.IPv4Address(via)} "
              f"proto {ROUTES_PROTO}" for net, (_, via) in zip(nets, pairs, strict=True)]
    # as `ip route show` writes them: a /32 without its prefix length
    keep = " ".join(str(n.network_address) if n.prefixlen == 32 else str(n) for n in nets)
    starts.append(f"ExecStart=/bin/sh -c 'ip -4 route show proto {ROUTES_PROTO} | while read -r "
                  f'dst rest; do case " {keep} " in *" $$dst "*) ;; *) ip route del "$$dst" '
                  f"proto {ROUTES_PROTO};; esac; done'")  # fmt: skip
    return ROUTES_UNIT.format(starts="\n".join(starts))


def unit(what: str, conf: str) -> str:
    return UNIT.format(what=what, dir=DIR, conf=conf)


# The backup central point serves only while its own tunnel to the primary is down: members
# then always land on the primary when it is up (a member that reached the backup during a
# blip is dropped when the primary is back, and reconnects to it), and the star never splits.
STANDBY_UNIT = """[Unit]
Description=Orbis overlay (backup central point: serves while the primary is unreachable)
After=network-online.target

[Service]
ExecStart=/bin/bash -c 'while :; do \\
  if ip -4 -o addr show dev {client} 2>/dev/null | grep -q inet; then \\
    systemctl is-active -q {server} && systemctl stop {server}; \\
  else systemctl is-active -q {server} || systemctl start {server}; fi; sleep 0.5; done'
ExecStopPost=/bin/systemctl stop {server}
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
"""
SERVER_UNIT_NAME = "orbis-overlay-server.service"
CLIENT_UNIT_NAME = "orbis-overlay-client.service"
STANDBY_UNIT_NAME = "orbis-overlay-standby.service"
ROUTES_UNIT_NAME = "orbis-overlay-routes.service"


def standby_unit() -> str:
    return STANDBY_UNIT.format(client=CLIENT_DEV, server=SERVER_UNIT_NAME)
