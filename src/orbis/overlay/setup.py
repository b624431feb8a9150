"""Bringing an infrastructure's overlay up on its nodes, over the service's SSH (as host names
are set), before any recipe runs; and revoking a removed node.

Per run: every tunnel node being configured makes its key and certificate request on the node
(the key never leaves it) and measures its site's subnet; the CA signs; then each node gets its
files (CA, certificate, CRL, OpenVPN configuration, systemd unit), the central points the ccd
entries of every member, and the other nodes of a site their routes through its router.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncssh

from orbis.model.infrastructure import Template
from orbis.overlay import render, state
from orbis.overlay.model import CentralPoint, Overlay
from orbis.overlay.node_apply import SCRIPT
from orbis.overlay.pki import Authority, RequestError
from orbis.store.repository import Store
from orbis.store.schema import InfrastructureRow, NodeRow

OnNode = Callable[..., Awaitable[tuple[int, str]]]  # (infra, row, command, **options)
NodeLog = Callable[[NodeRow, str], None]
CSR_BEGIN, CSR_END = "-----BEGIN CERTIFICATE REQUEST-----", "-----END CERTIFICATE REQUEST-----"
INSTALL_TIMEOUT = 600  # apt on a cold node
UP_TIMEOUT = 40.0  # a member's tunnel up after its start
SYSTEMD = "/etc/systemd/system"


def prepare_command(need_request: bool) -> str:
    """Install OpenVPN if missing; with `need_request`, a fresh key (mode 600, on the node)
    and its request on stdout; then the node's IPv4 addresses with prefixes."""
    request = (f"umask 077; openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
               f"-nodes -keyout {render.DIR}/node.key -subj /CN=request "
               f"-out {render.DIR}/node.csr 2>/dev/null; cat {render.DIR}/node.csr; "
               if need_request else "")  # fmt: skip
    return (f"set -e; mkdir -p {render.DIR}/ccd; {install('openvpn', 'openvpn', 'iputils-ping')} "
            f"{request}{LINKS}")  # fmt: skip


def install(command: str, *packages: str) -> str:
    """Shell: install `packages` from the node's Debian mirror unless `command` is there
    (the node image has neither OpenVPN nor ping: docs/overlay.md)."""
    return (f"command -v {command} >/dev/null || {{ apt-get update -q && DEBIAN_FRONTEND="
            "noninteractive apt-get install -y -q --no-install-recommends "
            f"{' '.join(packages)}; }} >/tmp/orbis-overlay-apt.log 2>&1 || "
            "{ tail -n 20 /tmp/orbis-overlay-apt.log; exit 1; };")  # fmt: skip


LINKS = "ip -o -4 addr show; ip -o link show"  # addresses, then links (their MTU)


def mtu_of(address: str | None, ip_output: str) -> int | None:
    """The MTU of the link holding `address`, from LINKS' output."""
    found = re.search(rf"^\d+:\s+(\S+)\s+inet {re.escape(address or '-')}/", ip_output, re.M)
    if not found:
        return None
    link = re.search(rf"^\d+: {re.escape(found[1])}(?:@\S+)?: .*? mtu (\d+)", ip_output, re.M)
    return int(link[1]) if link else None


def subnet_of(address: str | None, ip_output: str) -> str | None:
    """The CIDR of the interface holding `address`, from `ip -o -4 addr show`."""
    for found in re.finditer(r"inet (\d+\.\d+\.\d+\.\d+)/(\d+)", ip_output):
        if found[1] == address:
            return str(ipaddress.IPv4Network(f"{found[1]}/{found[2]}", strict=False))
    return None


def common_name(row: NodeRow) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{row.name}-{row.vm_id}")[:60]


@dataclass
class Plan:
    """Who does what in this run (rows of live nodes)."""

    servers: list[tuple[CentralPoint, NodeRow]]
    clients: list[NodeRow]  # run the client tunnel (members, and the backup's node)
    routers: dict[str, NodeRow]  # site → the node that routes it
    others: list[NodeRow]  # nodes of a site that route through its router


def plan(overlay: Overlay, rows: list[NodeRow]) -> Plan:
    by_compute: dict[str, list[NodeRow]] = {}
    for row in rows:
        by_compute.setdefault(row.name, []).append(row)
    servers = [(cp, by_compute[cp.compute][0]) for cp in overlay.central_points
               if by_compute.get(cp.compute)]  # fmt: skip
    primary_row = next((r for cp, r in servers if cp is overlay.primary), None)
    tunnel = overlay.vpn_computes()
    clients = []
    for row in rows:
        if row.name not in tunnel or row is primary_row:
            continue
        if overlay.central_point_of(row.name) is not None and primary_row is None:
            continue  # the backup serving alone is nobody's client
        clients.append(row)
    routers: dict[str, NodeRow] = {}
    for member in overlay.members:  # an explicit VRouter routes its site
        for row in by_compute.get(member.compute, []):
            if member.router:
                routers.setdefault(row.site or "", row)
    for _cp, row in servers:  # else the central point of that site does
        routers.setdefault(row.site or "", row)
    busy = {id(r) for r in clients} | {id(r) for _, r in servers}
    others = [r for r in rows if id(r) not in busy and (r.site or "") in routers]
    return Plan(servers, clients, routers, others)


def server_addresses(layout: Plan) -> list[str]:
    """Where members reach the central points, primary first (public address if any)."""
    return [r.public_ip or r.private_ip or "" for _, r in layout.servers]


def routers_of(layout: Plan) -> dict[str, str]:
    """site → the private address its other nodes route through."""
    return {site: r.private_ip or "" for site, r in layout.routers.items()}


def remotes_of(layout: Plan, row: NodeRow) -> list[str]:
    """The remotes of member `row` (the backup's node: the primary only)."""
    return [r.public_ip or r.private_ip or "" for _, r in layout.servers if r is not row]


class OverlaySetup:
    def __init__(self, store: Store, on_node: OnNode, node_log: NodeLog,
                 sealing: state.Sealing | None = None) -> None:  # fmt: skip
        self.store = store
        self.on_node = on_node
        self.node_log = node_log
        self.sealing = sealing

    def _authority(self, infra_id: str) -> tuple[state.OverlayState, Authority]:
        known = state.load(self.store, infra_id)
        if known is not None and known.ca_cert:
            key = self.sealing[1](known.ca_key_sealed) if self.sealing else known.ca_key_sealed
            return known, Authority(known.ca_cert, key)
        ca = Authority.create(infra_id)
        sealed = self.sealing[0](ca.key_pem) if self.sealing else ca.key_pem
        return state.OverlayState(ca_cert=ca.cert_pem, ca_key_sealed=sealed), ca

    async def apply(self, infra: InfrastructureRow, template: Template,
                    targets: list[NodeRow], all_nodes: list[NodeRow]) -> set[int]:  # fmt: skip
        """Set the overlay up for `targets` (and refresh the central points and routes of
        the others); the vm ids of targets it failed on (their logs say why)."""
        overlay = template.overlay
        assert overlay is not None
        rows = [n for n in all_nodes if not n.deleted and (n.private_ip or n.public_ip)]
        target_ids = {t.vm_id for t in targets}
        st, ca = self._authority(infra.id)
        layout = plan(overlay, rows)
        st.keep_sites(layout.routers)  # a site gone: no route, push or iroute to it
        # the backup's node is a server and a client: once
        tunnel_rows = list({r.vm_id: r for r in [r for _, r in layout.servers]
                            + layout.clients}.values())  # fmt: skip
        failed: set[int] = set()

        async def prepare(row: NodeRow) -> None:
            held = st.issued.get(str(row.vm_id))
            need = held is None or held.get("provider_id") != row.provider_id
            status, out = await self.on_node(infra, row, prepare_command(need),
                                             timeout=INSTALL_TIMEOUT)  # fmt: skip
            if status != 0:
                failed.add(row.vm_id)
                self.node_log(row, f"Error: overlay: could not prepare: {out.strip()[-400:]}")
                return
            subnet, mtu = subnet_of(row.private_ip, out), mtu_of(row.private_ip, out)
            if subnet and layout.routers.get(row.site or "") is row:
                st.site_subnets[row.site or ""] = subnet
                if mtu:
                    st.site_mtus[row.site or ""] = mtu
            if not need:
                return
            csr = out[out.find(CSR_BEGIN): out.find(CSR_END) + len(CSR_END)]
            server = overlay.central_point_of(row.name) is not None
            try:
                cert = ca.sign(csr, common_name(row), st.next_serial, server=server)
            except RequestError as exc:
                failed.add(row.vm_id)
                self.node_log(row, f"Error: overlay: {exc}")
                return
            st.revoke(row.vm_id)  # a node made anew: its former certificate is void
            st.issued[str(row.vm_id)] = {"serial": st.next_serial, "cn": common_name(row),
                                         "provider_id": row.provider_id, "cert": cert}
            st.next_serial += 1
            self.node_log(row, f"Overlay: certificate {common_name(row)} issued "
                          "(key made on the node)")  # fmt: skip

        await asyncio.gather(*(prepare(r) for r in tunnel_rows if r.vm_id in target_ids))
        for site, row in layout.routers.items():  # a router configured before: measured then
            known = site in st.site_subnets and site in st.site_mtus
            if not known and row.vm_id not in target_ids:
                status, out = await self.on_node(infra, row, LINKS)
                if status == 0 and (subnet := subnet_of(row.private_ip, out)):
                    st.site_subnets[site] = subnet
                if status == 0 and (mtu := mtu_of(row.private_ip, out)):
                    st.site_mtus[site] = mtu
        # the tunnel for the sites' links; when that changes, every member is rewritten
        tuned_for = min(st.site_mtus.values(), default=0)
        tuning = render.tuning_for([tuned_for])
        retuned = tuning != render.tuning_for([st.tuned_for])
        st.tuned_for = tuned_for
        st.servers = [r.vm_id for _, r in layout.servers]
        # a central point at a new address (made again, or started with another): every
        # member is told, not only this run's targets
        moved = server_addresses(layout) != st.remotes or retuned
        st.remotes = server_addresses(layout)
        st.routers = routers_of(layout)  # every node they serve gets its routes below
        state.save(self.store, infra.id, st)
        crl = ca.crl(st.revoked)
        server_rows = [r for _, r in layout.servers]
        todo = [row for row in tunnel_rows if row.vm_id not in failed
                and (row.vm_id in target_ids or row in server_rows
                     or (moved and row in layout.clients))]  # fmt: skip
        # the primary listens before any member starts: members try it first
        first = [r for r in todo if server_rows and r is server_rows[0]]
        for batch in (first, [r for r in todo if r not in first]):
            results = await asyncio.gather(*(self._tunnel_job(infra, overlay, layout, row, st,
                                                              crl, ca, tuning)
                                             for row in batch))  # fmt: skip
            failed |= {vm for vm in results if vm is not None}
        await self._refresh_routes(infra, template, layout, rows, st, target_ids)
        await asyncio.gather(*(self._wait_up(infra, row) for row in layout.clients
                               if row.vm_id in target_ids and row.vm_id not in failed))
        return failed & target_ids

    async def follow(self, infra: InfrastructureRow, template: Template,
                     all_nodes: list[NodeRow]) -> None:  # fmt: skip
        """After the machines changed (a reconcile pass): when a central point's address is
        not the one the members were told (its node started again elsewhere, or made anew),
        rewrite every member's remotes and restart its tunnel; when a site router's is not
        the one its site's nodes route through, their routes. Nothing when none moved."""
        overlay = template.overlay
        st = state.load(self.store, infra.id)
        if overlay is None or not overlay.central_points or st is None or not st.ca_cert:
            return
        rows = [n for n in all_nodes if not n.deleted and (n.private_ip or n.public_ip)]
        layout = plan(overlay, rows)
        now, routers = server_addresses(layout), routers_of(layout)
        gone = st.keep_sites(layout.routers)  # its nodes' routes go with the refresh below
        if now == st.remotes and routers == st.routers and not gone:
            return
        path = f"{render.DIR}/client.conf"
        done = True
        # a state from before remotes were kept (empty): its members' tunnels were made with
        # the settings of then, which a client.conf of now would not match: only recorded
        for row in layout.clients if st.remotes and now != st.remotes else []:
            if str(row.vm_id) not in st.issued:
                continue  # not set up yet: its configuration writes its remotes
            conf = render.client_conf(remotes_of(layout, row), render.tuning_for([st.tuned_for]))
            job = json.dumps({"files": {path: (conf, "644")},
                              "prune": {}, "units": {render.CLIENT_UNIT_NAME: [path]}})  # fmt: skip
            try:
                status, out = await self.on_node(infra, row, f"python3 -c {shlex.quote(SCRIPT)}",
                                                 stdin=job)  # fmt: skip
            except (OSError, asyncssh.Error) as exc:
                status, out = 255, str(exc) or type(exc).__name__
            if status != 0:
                done = False
                self.node_log(row, f"Warning: overlay: new central point address not "
                                   f"given: {out.strip()[-300:]}")  # fmt: skip
                continue
            self.node_log(row, f"Overlay: central points now at {', '.join(now)}")
        if routers != st.routers or gone:
            done &= await self._refresh_routes(infra, template, layout, rows, st, set())
        if done:  # else the next pass tries again
            st.remotes, st.routers = now, routers
            state.save(self.store, infra.id, st)

    async def _tunnel_job(self, infra: InfrastructureRow, overlay: Overlay, layout: Plan,
                          row: NodeRow, st: state.OverlayState, crl: str, ca: Authority,
                          tuning: render.Tuning) -> int | None:  # fmt: skip
        d = render.DIR
        files: dict[str, tuple[str, str]] = {f"{d}/ca.crt": (ca.cert_pem, "644"),
                                             f"{d}/crl.pem": (crl, "644")}  # fmt: skip
        held = st.issued.get(str(row.vm_id))
        if held is None:
            return row.vm_id
        files[f"{d}/node.crt"] = (held["cert"], "644")
        units: dict[str, list[str]] = {}
        prune: dict[str, list[str]] = {}
        shared = [f"{d}/ca.crt", f"{d}/node.crt"]
        cp = next((cp for cp, r in layout.servers if r is row), None)
        if cp is not None:
            backup = cp is overlay.backup
            own = row.site or ""
            others = [c for s, c in sorted(st.site_subnets.items()) if s != own]
            files[f"{d}/server.conf"] = (render.server_conf(cp, others, backup=backup,
                                                            tuning=tuning), "644")  # fmt: skip
            clients = [r for r in layout.clients if r is not row]
            entries = {}
            for client in clients:
                name = st.issued.get(str(client.vm_id), {}).get("cn")
                if not name:
                    continue
                routes_site = layout.routers.get(client.site or "") is client
                entries[name] = render.ccd_entry(cp, client.vm_id, client.site or "",
                                                 st.site_subnets, routes_site=routes_site)
            for name, text in entries.items():
                files[f"{d}/ccd/{name}"] = (text, "644")
            prune[f"{d}/ccd"] = sorted(entries)
            server_files = [*shared, f"{d}/server.conf", f"{SYSTEMD}/{render.SERVER_UNIT_NAME}"]
            files[f"{SYSTEMD}/{render.SERVER_UNIT_NAME}"] = (
                render.unit("central point", "server.conf"), "644")
            if backup and row in layout.clients:  # serves only while the primary is away
                files[f"{SYSTEMD}/{render.STANDBY_UNIT_NAME}"] = (render.standby_unit(), "644")
                units[render.STANDBY_UNIT_NAME] = [*server_files,
                                                   f"{SYSTEMD}/{render.STANDBY_UNIT_NAME}"]
            else:
                units[render.SERVER_UNIT_NAME] = server_files
        if row in layout.clients:
            files[f"{d}/client.conf"] = (render.client_conf(remotes_of(layout, row), tuning),
                                         "644")  # fmt: skip
            files[f"{SYSTEMD}/{render.CLIENT_UNIT_NAME}"] = (
                render.unit("member", "client.conf"), "644")
            units[render.CLIENT_UNIT_NAME] = [*shared, f"{d}/client.conf",
                                              f"{SYSTEMD}/{render.CLIENT_UNIT_NAME}"]
        job = json.dumps({"files": files, "prune": prune, "units": units})
        status, out = await self.on_node(infra, row, f"python3 -c {shlex.quote(SCRIPT)}",
                                         stdin=job)  # fmt: skip
        if status != 0:
            self.node_log(row, f"Error: overlay: could not start OpenVPN: {out.strip()[-400:]}")
            return row.vm_id
        self.node_log(row, "Overlay: " + ", ".join(out.split("\n")[:4]).strip(", "))
        return None

    def _overlay_subnets(self, overlay: Overlay) -> list[str]:
        return [cp.subnet for cp in overlay.central_points]

    def _site_routes(self, overlay: Overlay, layout: Plan, row: NodeRow,
                     st: state.OverlayState) -> list[tuple[str, str]]:  # fmt: skip
        """A site node's routes to the other sites and the overlay pools via its router."""
        router = layout.routers[row.site or ""]
        if not router.private_ip:
            return []
        cidrs = [c for s, c in sorted(st.site_subnets.items()) if s != (row.site or "")]
        own = overlay.central_point_of(row.name)  # a central point keeps its pool's link
        cidrs += [c for c in self._overlay_subnets(overlay) if own is None or c != own.subnet]
        return [(c, router.private_ip) for c in cidrs]

    def _static_routes(self, template: Template,
                       rows: list[NodeRow]) -> list[tuple[NodeRow, str, str]]:  # fmt: skip
        """RADL `router = 'CIDR,system'`: the network's other nodes reach CIDR via system."""
        assert template.overlay is not None
        found = []
        for route in template.overlay.routes:
            via = next((r.private_ip for r in rows if r.name == route.system), None)
            if not via:
                continue
            for row in rows:
                compute = template.computes.get(row.name)
                on_net = compute is not None and any(i.network == route.network
                                                     for i in compute.interfaces)  # fmt: skip
                if on_net and row.name != route.system:
                    found.append((row, route.cidr, via))
        return found

    async def _refresh_routes(self, infra: InfrastructureRow, template: Template, layout: Plan,
                              rows: list[NodeRow], st: state.OverlayState,
                              targets: set[int]) -> bool:  # fmt: skip
        """Routes of the other nodes: the site routes of every node a router serves (a router
        may have changed), RADL routes of the targets; each node's all in one unit. True if
        every node took them."""
        assert template.overlay is not None
        routes: dict[int, list[tuple[str, str]]] = {}
        for row in layout.others:
            routes[row.vm_id] = self._site_routes(template.overlay, layout, row, st)
        for row, cidr, via in self._static_routes(template, rows):
            routes.setdefault(row.vm_id, []).append((cidr, via))
        site_nodes = {r.vm_id for r in layout.others}
        by_id = {r.vm_id: r for r in rows}
        results = await asyncio.gather(*(
            self._set_routes(infra, by_id[vm], pairs, vm in site_nodes)
            for vm, pairs in routes.items() if pairs and (vm in site_nodes or vm in targets)))
        return all(results)

    async def _set_routes(self, infra: InfrastructureRow, row: NodeRow,
                          pairs: list[tuple[str, str]], site_node: bool) -> bool:  # fmt: skip
        """Routes set now and at every boot: an enabled oneshot unit (node_apply.py)."""
        path = f"{SYSTEMD}/{render.ROUTES_UNIT_NAME}"
        job = json.dumps({"files": {path: (render.routes_unit(pairs), "644")}, "prune": {},
                          "units": {render.ROUTES_UNIT_NAME: [path]}})  # fmt: skip
        ping = f"{install('ping', 'iputils-ping')} " if site_node else ""
        try:
            status, out = await self.on_node(infra, row, f"{ping}python3 -c "
                                             f"{shlex.quote(SCRIPT)}", stdin=job,
                                             timeout=INSTALL_TIMEOUT)  # fmt: skip
        except (OSError, asyncssh.Error) as exc:
            status, out = 255, str(exc) or type(exc).__name__
        if status != 0:
            self.node_log(row, f"Warning: overlay: routes not set: {out.strip()[-300:]}")
        return status == 0

    async def _wait_up(self, infra: InfrastructureRow, row: NodeRow) -> None:
        command = (f"for i in $(seq {int(UP_TIMEOUT * 2)}); do ip -o -4 addr show dev "
                   f"{render.CLIENT_DEV} 2>/dev/null | grep -q inet && exit 0; sleep 0.5; "
                   "done; exit 1")  # fmt: skip
        status, _ = await self.on_node(infra, row, command, timeout=UP_TIMEOUT + 10)
        if status != 0:
            self.node_log(row, f"Warning: overlay: the tunnel is not up after {UP_TIMEOUT:.0f} s")

    async def revoke(self, infra: InfrastructureRow, row: NodeRow,
                     live: list[NodeRow]) -> None:  # fmt: skip
        """A removed node's certificate goes on the CRL, which the central points get now."""
        st = state.load(self.store, infra.id)
        if st is None or not st.revoke(row.vm_id):
            return
        key = self.sealing[1](st.ca_key_sealed) if self.sealing else st.ca_key_sealed
        crl = Authority(st.ca_cert, key).crl(st.revoked)
        state.save(self.store, infra.id, st)
        cn = common_name(row)
        job = json.dumps({"files": {f"{render.DIR}/crl.pem": [crl, "644"]},
                          "prune": {}, "units": {}})  # fmt: skip
        servers = [r for r in live if r.vm_id in st.servers and r.vm_id != row.vm_id]
        for server in servers:
            status, out = await self.on_node(
                infra, server, f"rm -f {render.DIR}/ccd/{shlex.quote(cn)}; "
                f"python3 -c {shlex.quote(SCRIPT)}", stdin=job)  # fmt: skip
            if status != 0:
                self.node_log(server, f"Warning: overlay: CRL not updated: {out.strip()[-300:]}")
        self.node_log(row, f"Overlay: certificate {cn} revoked")
