"""A stand-in OpenStack cloud: Keystone, Nova, Neutron, Glance, Cinder and Blazar on 127.0.0.1.

One threaded HTTP server answers every service under its own path prefix (`/v3` and `/v2.0`
Keystone, `/compute/v2.1`, `/network/v2.0`, `/image/v2`, `/volume/v3/<project>`,
`/reservation/v1`); the token's catalog points back at it, so openstacksdk and keystoneauth
discover and call it as they would a real cloud. Responses use the documented JSON shapes (the
templates are in `fixtures/`); state is kept in memory so what a test creates is listed
afterwards. Compute advertises microversion 2.1 unless told otherwise (`compute_microversion`),
so the SDK speaks the base API.

Disk snapshots: Nova's createImage (202 with a Location header; from microversion 2.45 a body
`{"image_id": ...}` instead) and Cinder's os-volume_upload_image (202 with the upload's
description) make a Glance image that goes queued -> saving -> active over successive GETs of
it; it can then boot a new server. Glance takes json-patch updates and deletes (204, then 404).

Volumes added to a running server: Cinder's POST /volumes (202, `creating` -> `available` over
GETs of it; the `volumes` and `gigabytes` quotas refused with Cinder's 413 overLimit; an unknown
volume type is a 404) and DELETE /volumes/{id} (202; 400 unless available or error and
detached); Nova's POST /servers/{id}/os-volume_attachments (200, the volume `attaching` -> `in-use`,
the device asked for or the next free vdX) and DELETE .../os-volume_attachments/{volume} (202,
`detaching` -> `available`; deleting the server detaches such volumes the same way), and
POST/PUT /servers/{id}/metadata.

    with OpenStackStandin(quota={"instances": 1}) as cloud:
        provider = OpenStackProvider(cloud.auth_line(), options=cloud.fast_options)
"""

from __future__ import annotations

import copy
import ipaddress
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from orbis.testing.standins import allowed
from orbis.testing.standins.openstack.boot import ContainerBoot
from orbis.testing.standins.openstack.common import (
    DEFAULT_QUOTA,
    Reply,
    _fill,
    _fixture,
)
from orbis.testing.standins.openstack.compute import Compute


class OpenStackStandin(Compute):
    """A stateful OpenStack on a free port, started and stopped as a context manager.

    quota: per-project limits (IM names: instances, cores, ram, floating_ips, security_groups,
      volumes). build_polls: server GETs a new server stays in BUILD. fault: servers end in ERROR
      with this fault message. private_network: the project already has a private network.
      private_pool: an external network whose floating IPs are private-range, sorted first.
      lease_polls: lease GETs before ACTIVE. lease_delete_conflicts: 409s before a lease delete
      succeeds. refuse_auth: every credential is refused (401). pools=False: the public network
      is a provider network (public CIDR, not external), so there are no floating IPs.
      sg_delete_conflicts: 409s (SecurityGroupInUse) before a security-group delete succeeds.
      The project has Neutron's `default` security group, given to servers created without one.
      image_polls: GETs of a new snapshot image per status step (queued, saving, active).
      image_fault: the status a snapshot image ends in instead of `active` (e.g. "killed").
      compute_microversion: the newest Nova microversion advertised ("2.45" for createImage's
      JSON answer). quota["images"]: the project's Glance images (snapshots count).
      volume_polls: GETs of a volume per status step (creating, attaching, detaching).
      volume_fault: the status a new volume ends in instead of `available` (e.g. "error").
      boot: servers are real system containers (boot.py): the key pair, user_data, fixed and
      floating IPs and boot-time volumes are honoured; closed (everything removed) on exit.
    """

    def __init__(
        self,
        *,
        quota: dict[str, int] | None = None,
        build_polls: int = 1,
        fault: str | None = None,
        private_network: bool = False,
        private_pool: bool = False,
        lease_polls: int = 1,
        lease_delete_conflicts: int = 0,
        lease_degraded: bool = False,
        refuse_auth: bool = False,
        pools: bool = True,
        region: str = "RegionOne",
        sg_delete_conflicts: int = 0,
        image_polls: int = 1,
        image_fault: str | None = None,
        compute_microversion: str = "2.1",
        volume_polls: int = 1,
        volume_fault: str | None = None,
        boot: ContainerBoot | None = None,
        catalog_urls: dict[str, str] | None = None,
    ) -> None:
        self.quota = {**DEFAULT_QUOTA, **(quota or {})}
        self.build_polls, self.fault = build_polls, fault
        self.lease_polls, self.lease_delete_conflicts = lease_polls, lease_delete_conflicts
        self.lease_degraded, self.refuse_auth, self.region = lease_degraded, refuse_auth, region
        self.sg_delete_conflicts = sg_delete_conflicts
        self.image_polls, self.image_fault = image_polls, image_fault
        self.compute_microversion = compute_microversion
        self.volume_polls, self.volume_fault = volume_polls, volume_fault
        self.boot = boot
        self.catalog_urls = dict(catalog_urls or {})  # service type -> the URL its token lists
        self._headers: Any = {}  # the request being answered (routes run under the lock)
        seed = _fixture("seed")
        self.errors = _fixture("errors")
        self.projects: list[dict[str, Any]] = seed["projects"]
        self.flavors = {f["id"]: f for f in seed["flavors"]}
        self.images = {i["id"]: i for i in seed["images"]}
        self.hosts: list[dict[str, Any]] = seed["blazar_hosts"]
        self.volume_types = {t["name"]: t for t in seed["volume_types"]}
        self.networks: dict[str, dict[str, Any]] = {}
        self.subnets: dict[str, dict[str, Any]] = {}
        self.ports: dict[str, dict[str, Any]] = {}
        self.routers: dict[str, dict[str, Any]] = {}
        self.floatingips: dict[str, dict[str, Any]] = {}
        self.security_groups: dict[str, dict[str, Any]] = {}
        self.servers: dict[str, dict[str, Any]] = {}
        self.keypairs: dict[str, dict[str, Any]] = {}  # Nova key pairs (per user), by name
        self.volumes: dict[str, dict[str, Any]] = {}
        self.leases: dict[str, dict[str, Any]] = {}
        self.reserved_flavors: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str | None] = {}  # token -> project id (None: unscoped)
        self.requests: list[tuple[str, str, Any, int]] = []  # (method, path, body, status)
        self._lock = threading.RLock()
        self._next_ip: dict[str, int] = {}
        default_group = seed["default_security_group"] | {"project_id": self.project["id"]}
        self.security_groups[default_group["id"]] = default_group
        nets = seed["networks"]
        if private_pool:
            nets = [seed["private_pool"], *nets]
        if private_network:
            nets = [*nets, seed["private_network"]]
        for net in nets:
            self._add_network(copy.deepcopy(net) | ({} if pools else {"router:external": False}))
        if private_network:  # with the router that makes its floating IPs reachable
            self.routers["r-default"] = {"id": "r-default", "name": "router1", "tags": [],
                "status": "ACTIVE", "project_id": self.project["id"],
                "external_gateway_info": {"network_id": seed["networks"][0]["id"]}}  # fmt: skip
            self._add_port(seed["private_network"]["id"], "r-default",
                           "network:router_interface", [])  # fmt: skip
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> OpenStackStandin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave in separate writes

            def _any(self) -> None:
                standin._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._allowed = allowed(f"127.0.0.1:{self._server.server_port}")  # a user's line names it
        self._allowed.__enter__()
        if self.boot:
            self._public_range(self.boot.free_public_cidr())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._allowed.__exit__(None, None, None)
        if self.boot:
            self.boot.close()

    def _public_range(self, cidr: str) -> None:
        """With real containers, the public network takes a range no podman network uses, so
        its floating IPs are the containers' addresses on the podman network made for it."""
        for net in self.networks.values():
            if net["router:external"] and net["name"] == "public":
                subnet = self.subnets[net["subnets"][0]]
                subnet |= {"cidr": cidr,
                           "gateway_ip": str(next(ipaddress.ip_network(cidr).hosts()))}

    @property
    def fast_options(self) -> dict[str, float]:
        """Provider options that make polling instantaneous."""
        return {"poll_interval": 0.01, "timeout": 10, "snapshot_timeout": 10}

    def owned(self) -> dict[str, list[str]]:
        """Names of what is left that Orbis made (anything carrying an orbis tag or metadata)."""
        def tagged(coll: dict[str, dict[str, Any]]) -> list[str]:
            return [r.get("name") or r["id"] for r in coll.values()
                    if any(t.startswith("orbis.") for t in r.get("tags", []))]  # fmt: skip
        return {
            "servers": [s["name"] for s in self.servers.values()],
            "networks": tagged(self.networks),
            "routers": tagged(self.routers),
            "security_groups": tagged(self.security_groups),
            "floatingips": tagged(self.floatingips),
            "volumes": [v["id"] for v in self.volumes.values() if v.get("orbis")
                        or any(k.startswith("orbis.") for k in v.get("metadata") or {})],
            "leases": [le["name"] for le in self.leases.values()],
        }

    # -- HTTP plumbing ------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        query = dict(parse_qsl(parts.query))
        method = handler.command
        status, headers, payload = 200, {}, None
        try:
            with self._lock:
                status, payload = self._route(method, parts.path.rstrip("/"), query, body,
                                              handler.headers)  # fmt: skip
        except Reply as reply:
            status, headers, payload = reply.status, reply.headers, reply.body
        self.requests.append((method, parts.path, body, status))
        data = b"" if payload is None else json.dumps(payload).encode()
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if method != "HEAD":
            handler.wfile.write(data)

    def _route(self, method: str, path: str, query: dict[str, str], body: Any,
               headers: Any) -> tuple[int, Any]:  # fmt: skip
        versions = _fixture("versions")
        roots = {"": "identity", "/v3": "identity", "/compute": "compute",
                 "/compute/v2.1": "compute", "/network": "network", "/network/v2.0": "network",
                 "/image": "image", "/image/v2": "image", "/volume": "volume",
                 "/volume/v3": "volume", f"/volume/v3/{self.project['id']}": "volume"}  # fmt: skip
        if method == "GET" and path in roots:
            doc = _fill(versions[roots[path]], base=self.url)
            if roots[path] == "compute":
                doc["versions"][0]["version"] = self.compute_microversion
            if path == "/v3":
                return 200, {"version": doc["versions"]["values"][0]}
            if path.count("/") >= 2 and roots[path] != "identity":  # a versioned root
                return 200, {"version": doc["versions"][0]}
            return (300 if roots[path] == "identity" else 200), doc
        if path.startswith(("/v3", "/v2.0")):
            return self._keystone(method, path, body, headers)
        project = self._authorised(headers)
        self._headers = headers
        for prefix, service in (("/compute/v2.1", self._nova), ("/network/v2.0", self._neutron),
                                ("/image/v2", self._glance), ("/reservation/v1", self._blazar),
                                (f"/volume/v3/{project}", self._cinder)):  # fmt: skip
            if path.startswith(prefix):
                handler: Callable[..., tuple[int, Any]] = service
                return handler(method, path[len(prefix):], query, body)
        raise Reply(404, {"error": {"message": f"no such path {path}"}})

    def _authorised(self, headers: Any) -> str:
        token = headers.get("X-Auth-Token")
        project = self.tokens.get(token) if token else None
        if not project:
            raise Reply(401, _fixture("keystone")["unauthorized"])
        return project

