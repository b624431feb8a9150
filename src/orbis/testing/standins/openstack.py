"""A stand-in OpenStack cloud: Keystone, Nova, Neutron, Glance, Cinder and Blazar on 127.0.0.1.

One threaded HTTP server answers every service under its own path prefix (`/v3` and `/v2.0`
Keystone, `/compute/v2.1`, `/network/v2.0`, `/image/v2`, `/volume/v3/<project>`,
`/reservation/v1`); the token's catalog points back at it, so openstacksdk and keystoneauth
discover and call it as they would a real cloud. Responses use the documented JSON shapes (the
templates are in `openstack_fixtures/`); state is kept in memory so what a test creates is listed
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
import re
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FIXTURES = Path(__file__).with_name("openstack_fixtures")
USER, PASSWORD, DOMAIN = "demo", "secret", "Default"
APPCRED_ID = "6f0c1e0d5a1f4b1c8d2e3f4a5b6c7d8e"
IDP, PROTOCOL, ACCESS_TOKEN = "egi.eu", "openid", "eyJhbGciOiJSUzI1NiJ9.standin"
DEFAULT_QUOTA = {"instances": 10, "cores": 20, "ram": 51200, "floating_ips": 10,
                 "security_groups": 10, "volumes": 10, "gigabytes": 1000,
                 "images": 20}  # fmt: skip
TRANSITIONAL = {"CREATING", "STARTING", "UPDATING", "TERMINATING", "DELETING"}


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    data.pop("_doc", None)
    return data


def _fill(template: Any, **values: Any) -> Any:
    """A fixture body with its {placeholders} filled in."""
    text = json.dumps(template)
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return json.loads(text)


class Reply(Exception):
    """Raised by a route to answer with an error (or any early) response."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


class OpenStackStandin:
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
    ) -> None:
        self.quota = {**DEFAULT_QUOTA, **(quota or {})}
        self.build_polls, self.fault = build_polls, fault
        self.lease_polls, self.lease_delete_conflicts = lease_polls, lease_delete_conflicts
        self.lease_degraded, self.refuse_auth, self.region = lease_degraded, refuse_auth, region
        self.sg_delete_conflicts = sg_delete_conflicts
        self.image_polls, self.image_fault = image_polls, image_fault
        self.compute_microversion = compute_microversion
        self.volume_polls, self.volume_fault = volume_polls, volume_fault
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
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def project(self) -> dict[str, Any]:
        return self.projects[0]

    @property
    def fast_options(self) -> dict[str, float]:
        """Provider options that make polling instantaneous."""
        return {"poll_interval": 0.01, "timeout": 10, "snapshot_timeout": 10}

    def auth_line(self, kind: str = "3.x_password", **overrides: str) -> dict[str, str]:
        """An IM auth line (parsed) for this cloud; `overrides` replace or add fields."""
        line = {"id": "standin", "type": "OpenStack", "host": self.url, "auth_version": kind}
        if kind in ("3.x_password", "2.0_password"):
            line |= {"username": USER, "password": PASSWORD, "tenant": self.project["name"],
                     "domain": DOMAIN}  # fmt: skip
        elif kind == "3.x_appcred":
            line |= {"username": APPCRED_ID, "password": PASSWORD}
        elif kind == "3.x_oidc_access_token":
            line |= {"username": IDP, "tenant": PROTOCOL, "password": ACCESS_TOKEN}
        return line | overrides

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

    # -- Keystone -----------------------------------------------------------------------------

    def _catalog(self, project_id: str) -> list[dict[str, Any]]:
        template = _fixture("keystone")["catalog_entry"]
        services = [("identity", "keystone", ""), ("compute", "nova", "/compute/v2.1"),
                    ("network", "neutron", "/network"), ("image", "glance", "/image"),
                    ("volumev3", "cinderv3", f"/volume/v3/{project_id}"),
                    ("reservation", "blazar", "/reservation/v1")]  # fmt: skip
        catalog = []
        for kind, name, path in services:
            entry = _fill(template, base=self.url)
            entry |= {"type": kind, "name": name, "id": f"s-{kind}"}
            entry["endpoints"][0] |= {"url": self.url + (path or "/v3"), "region": self.region,
                                      "region_id": self.region, "id": f"e-{kind}"}  # fmt: skip
            catalog.append(entry)
        return catalog

    def _issue(self, project: dict[str, Any] | None, methods: list[str]) -> tuple[int, Any]:
        token_id = uuid.uuid4().hex
        self.tokens[token_id] = project["id"] if project else None
        body = _fixture("keystone")["token"]
        body["token"]["methods"] = methods
        if project:
            body["token"]["project"] = {"id": project["id"], "name": project["name"],
                                        "domain": {"id": "default", "name": DOMAIN}}  # fmt: skip
            body["token"]["catalog"] = self._catalog(project["id"])
        raise Reply(201, body, {"X-Subject-Token": token_id})

    def _find_project(self, scope: dict[str, Any] | None) -> dict[str, Any] | None:
        wanted = (scope or {}).get("project") or {}
        for project in self.projects:
            if wanted.get("id") == project["id"] or wanted.get("name") == project["name"]:
                return project
        return None

    def _keystone(self, method: str, path: str, body: Any, headers: Any) -> tuple[int, Any]:
        refuse = Reply(401, _fixture("keystone")["unauthorized"])
        if method == "POST" and path == "/v2.0/tokens":
            creds = (body or {}).get("auth", {})
            password = creds.get("passwordCredentials", {})
            if self.refuse_auth or password != {"username": USER, "password": PASSWORD}:
                raise refuse
            project = self._find_project({"project": {"name": creds.get("tenantName"),
                                                      "id": creds.get("tenantId")}})  # fmt: skip
            if project is None:
                raise refuse
            token_id = uuid.uuid4().hex
            self.tokens[token_id] = project["id"]
            access = _fixture("keystone")["v2_access"]
            access["access"]["token"] |= {"id": token_id, "tenant": {
                "id": project["id"], "name": project["name"], "enabled": True}}
            access["access"]["serviceCatalog"] = [
                {"type": e["type"], "name": e["name"], "endpoints": [
                    {"region": self.region, "publicURL": e["endpoints"][0]["url"],
                     "internalURL": e["endpoints"][0]["url"], "id": e["id"]}]}
                for e in self._catalog(project["id"]) if e["type"] != "identity"]
            return 200, access
        fed = re.fullmatch(r"/v3/OS-FEDERATION/identity_providers/([^/]+)/protocols/([^/]+)/auth",
                           path)  # fmt: skip
        if fed and method in ("GET", "POST"):
            bearer = headers.get("Authorization", "")
            if self.refuse_auth or fed.groups() != (IDP, PROTOCOL) or \
                    bearer != f"Bearer {ACCESS_TOKEN}":  # fmt: skip
                raise refuse
            self._issue(None, ["mapped"])
        if method == "GET" and path == "/v3/auth/projects":
            if headers.get("X-Auth-Token") not in self.tokens:
                raise refuse
            return 200, {"projects": self.projects, "links": {"self": None, "next": None}}
        if method == "POST" and path == "/v3/auth/tokens":
            auth = (body or {}).get("auth", {})
            identity = auth.get("identity", {})
            methods = identity.get("methods", [])
            scope = auth.get("scope")
            if self.refuse_auth:
                raise refuse
            if methods == ["password"]:
                user = identity["password"]["user"]
                if (user.get("name"), user.get("password")) != (USER, PASSWORD):
                    raise refuse
                project = self._find_project(scope)
            elif methods == ["application_credential"]:
                cred = identity["application_credential"]
                if (cred.get("id"), cred.get("secret")) != (APPCRED_ID, PASSWORD):
                    raise refuse
                project = self.project  # an application credential carries its project
            elif methods == ["token"]:
                if identity["token"].get("id") not in self.tokens:
                    raise refuse
                project = self._find_project(scope)
            else:
                raise refuse
            if project is None:
                raise Reply(401, _fixture("keystone")["unauthorized"])
            self._issue(project, methods)
        raise Reply(404, {"error": {"code": 404, "message": f"{path} not found"}})

    # -- Nova ---------------------------------------------------------------------------------

    def _nova_error(self, status: int, message: str) -> Reply:
        kind = {400: "nova_bad_request", 404: "nova_not_found", 409: "nova_conflict"}[status]
        return Reply(status, _fill(self.errors[kind], message=message))

    def _flavor_view(self, flavor: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in flavor.items() if k != "extra_specs"}
        view.setdefault("OS-FLV-DISABLED:disabled", False)
        view |= {"os-flavor-access:is_public": True, "swap": "", "rxtx_factor": 1.0,
                 "OS-FLV-EXT-DATA:ephemeral": 0,
                 "links": [{"rel": "self", "href": f"{self.url}/compute/v2.1/flavors/{flavor['id']}"}]}  # fmt: skip  # noqa: E501
        return view

    def _server_view(self, server: dict[str, Any]) -> dict[str, Any]:
        addresses: dict[str, list[dict[str, Any]]] = {}
        for port in self.ports.values():
            if port["device_id"] != server["id"]:
                continue
            net = self.networks[port["network_id"]]["name"]
            for fixed in port["fixed_ips"]:
                addresses.setdefault(net, []).append({"version": 4, "addr": fixed["ip_address"],
                    "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})  # fmt: skip  # noqa: E501
            for fip in self.floatingips.values():
                if fip["port_id"] == port["id"]:
                    addresses[net].append({"version": 4, "addr": fip["floating_ip_address"],
                        "OS-EXT-IPS:type": "floating",
                        "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})  # fmt: skip
        view = {k: v for k, v in server.items() if not k.startswith("_")}
        view["addresses"] = addresses
        on_ports = [g for p in self.ports.values() if p["device_id"] == server["id"]
                    for g in p["security_groups"]]  # fmt: skip
        view["security_groups"] = [{"name": self.security_groups[g]["name"]}
                                   for g in dict.fromkeys(on_ports) if g in self.security_groups]
        view["os-extended-volumes:volumes_attached"] = [
            {"id": v["id"]} for v in self.volumes.values() if v.get("_server") == server["id"]]
        return view

    def _advance(self, server: dict[str, Any]) -> None:
        """One poll of a server: BUILD and transitional states move on after a few."""
        server["_polls"] = server.get("_polls", 0) + 1
        status = server["status"]
        if status == "BUILD" and server["_polls"] > self.build_polls:
            fault = server.pop("_fault", None)
            if fault:
                server |= {"status": "ERROR", "OS-EXT-STS:vm_state": "error", "fault":
                           _fill(self.errors["no_valid_host"]) | {"message": fault}}  # fmt: skip
            else:
                server |= {"status": "ACTIVE", "OS-EXT-STS:vm_state": "active"}
        elif status == "HARD_REBOOT":
            server |= {"status": "ACTIVE", "OS-EXT-STS:vm_state": "active"}
        elif status == "RESIZE":
            server |= {"status": "VERIFY_RESIZE", "OS-EXT-STS:vm_state": "resized"}

    def _nova(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if method == "GET" and path in ("/flavors", "/flavors/detail"):
            flavors = [self._flavor_view(f) for f in self.flavors.values()]
            return 200, {"flavors": flavors}
        if m := re.fullmatch(r"/flavors/([^/]+)(/os-extra_specs)?", path):
            flavor = self.flavors.get(m[1]) or self.reserved_flavors.get(m[1])
            if flavor is None:
                raise self._nova_error(404, f"Flavor {m[1]} could not be found.")
            if m[2]:
                return 200, {"extra_specs": flavor.get("extra_specs", {})}
            return 200, {"flavor": self._flavor_view(flavor)}
        if m := re.fullmatch(r"/os-quota-sets/([^/]+)/detail", path):
            return 200, {"quota_set": self._nova_quota(m[1])}
        if method == "GET" and path in ("/servers", "/servers/detail"):
            found = list(self.servers.values())
            if "name" in query:
                found = [s for s in found if re.search(query["name"], s["name"])]
            for server in found:
                self._advance(server)
            return 200, {"servers": [self._server_view(s) for s in found]}
        if method == "POST" and path == "/servers":
            return self._create_server(body)
        if path == "/os-keypairs":
            if method == "GET":
                return 200, {"keypairs": [{"keypair": k} for k in self.keypairs.values()]}
            pair = (body or {}).get("keypair") or {}
            if pair.get("name") in self.keypairs:
                raise self._nova_error(409, f"Key pair '{pair.get('name')}' already exists.")
            self.keypairs[pair["name"]] = {
                "name": pair["name"], "public_key": pair.get("public_key", ""), "type": "ssh",
                "fingerprint": "00:11:22", "user_id": "u-demo"}  # fmt: skip
            return 200, {"keypair": self.keypairs[pair["name"]]}
        if m := re.fullmatch(r"/os-keypairs/([^/]+)", path):
            if m[1] not in self.keypairs:
                raise self._nova_error(404, f"Keypair {m[1]} not found for user u-demo")
            if method == "DELETE":
                del self.keypairs[m[1]]
                return 202, None
            return 200, {"keypair": self.keypairs[m[1]]}
        m = re.fullmatch(r"/servers/([^/]+)(/action|/os-volume_attachments|/metadata)?"
                         r"(?:/([^/]+))?", path)  # fmt: skip
        if m is None:
            raise self._nova_error(404, f"{path} not found")
        if m[1] not in self.servers:
            raise self._nova_error(404, f"Instance {m[1]} could not be found.")
        server = self.servers[m[1]]
        if m[2] == "/os-volume_attachments":
            return self._volume_attachments(server, method, m[3], body)
        if m[2] == "/metadata" and m[3] is None:
            if method in ("POST", "PUT"):  # POST merges the items, PUT replaces them all
                items = {str(k): str(v) for k, v in ((body or {}).get("metadata") or {}).items()}
                server["metadata"] = (server["metadata"] if method == "POST" else {}) | items
            return 200, {"metadata": server["metadata"]}
        if m[3] is not None:
            raise self._nova_error(404, f"{path} not found")
        if method == "GET":
            self._advance(server)
            return 200, {"server": self._server_view(server)}
        if method == "DELETE":
            self._delete_server(server)
            return 204, None
        return self._server_action(server, body or {})

    def _volume_attachments(self, server: dict[str, Any], method: str, volume_id: str | None,
                            body: Any) -> tuple[int, Any]:  # fmt: skip
        """Nova's os-volume_attachments: list, attach (the volume must be available; the device
        asked for must be free) and detach. Attached volumes are `attaching`, then `in-use`."""
        attached = [(vid, device) for vid, device in server["_attachments"]
                    if self.volumes.get(vid, {}).get("_server") == server["id"]]  # fmt: skip
        if method == "GET" and volume_id is None:
            return 200, {"volumeAttachments": [
                {"id": vid, "volumeId": vid, "serverId": server["id"], "device": device}
                for vid, device in attached]}  # fmt: skip
        if method == "POST" and volume_id is None:
            state = server["OS-EXT-STS:vm_state"]
            if server["status"] not in ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"):
                raise self._nova_error(409, f"Cannot 'attach_volume' instance {server['id']} "
                                            f"while it is in vm_state {state}")  # fmt: skip
            asked = (body or {}).get("volumeAttachment") or {}
            volume = self.volumes.get(str(asked.get("volumeId")))
            if volume is None:
                raise self._nova_error(404, f"Volume {asked.get('volumeId')} could not be found.")
            if volume["status"] != "available":
                raise self._nova_error(400, f"Invalid volume: volume '{volume['id']}' status must "
                                            f"be 'available'. Currently in '{volume['status']}'")
            bdm = server["_bdm"]
            taken = {"/dev/vda", *(d for _, d in attached), *(
                d for e, d in zip(bdm, self._devices(bdm), strict=True)
                if e.get("destination_type") == "local")}  # fmt: skip
            device = asked.get("device")
            if device in taken:
                raise self._nova_error(400, f"The supplied device path ({device}) is in use.")
            device = device or next(f"/dev/vd{c}" for c in "bcdefghijklmnopqrstuvwxyz"
                                    if f"/dev/vd{c}" not in taken)  # fmt: skip
            volume |= {"status": "attaching", "_server": server["id"], "_device": device,
                       "_delete": False, "_later": True, "_polls": 0}  # fmt: skip
            server["_attachments"] = [a for a in server["_attachments"] if a[0] != volume["id"]]
            server["_attachments"].append((volume["id"], device))
            return 200, {"volumeAttachment": {"id": volume["id"], "volumeId": volume["id"],
                                              "serverId": server["id"], "device": device}}
        device = dict(attached).get(volume_id or "")
        if device is None:
            raise self._nova_error(404, f"Volume {volume_id} is not attached to {server['id']}")
        if method == "GET":
            return 200, {"volumeAttachment": {"id": volume_id, "volumeId": volume_id,
                                              "serverId": server["id"], "device": device}}
        if method == "DELETE":
            self.volumes[str(volume_id)] |= {"status": "detaching", "_polls": 0}
            return 202, None
        raise self._nova_error(409, f"Cannot {method} a volume attachment (stand-in)")

    def _microversion(self) -> tuple[int, ...]:
        """The compute microversion the request asked for (2.1 when it named none)."""
        asked = self._headers.get("OpenStack-API-Version") or ""
        version = asked.split()[-1] if asked.startswith("compute ") else \
            self._headers.get("X-OpenStack-Nova-API-Version") or "2.1"  # fmt: skip
        if version == "latest":
            version = self.compute_microversion
        return tuple(int(p) for p in version.split("."))

    def _create_image(self, server: dict[str, Any], action: dict[str, Any]) -> None:
        """Nova's createImage: a Glance snapshot whose properties are the action's metadata.
        Answers 202 with the image's Glance URL in Location, or (2.45+) {"image_id": ...}."""
        if not action.get("name"):
            raise self._nova_error(400, "Invalid input for field/attribute createImage. "
                                        "Value: {}. 'name' is a required property")  # fmt: skip
        self._image_quota("nova")
        base = server["image"]["id"] if server["image"] else ""
        image = self._new_image(action["name"], disk_format="qcow2",
            properties={**(action.get("metadata") or {}), "image_type": "snapshot",
                        "instance_uuid": server["id"], "base_image_ref": base,
                        "user_id": server["user_id"], "owner_user_name": USER})  # fmt: skip
        if self._microversion() >= (2, 45):
            raise Reply(202, {"image_id": image["id"]})
        raise Reply(202, None, {"Location": f"{self.url}/image/v2/images/{image['id']}"})

    def _nova_quota(self, project: str) -> dict[str, Any]:
        servers = [s for s in self.servers.values() if s["tenant_id"] == project
                   and not s["_hints"].get("reservation")
                   and s["flavor"]["id"] not in self.reserved_flavors]  # fmt: skip
        used = {"instances": len(servers),
                "cores": sum(self._flavor(s["flavor"]["id"])["vcpus"] for s in servers),
                "ram": sum(self._flavor(s["flavor"]["id"])["ram"] for s in servers)}  # fmt: skip
        return {"id": project} | {k: {"in_use": v, "limit": self.quota[k], "reserved": 0}
                                  for k, v in used.items()}  # fmt: skip

    def _flavor(self, flavor_id: str) -> dict[str, Any]:
        return self.flavors.get(flavor_id) or self.reserved_flavors[flavor_id]

    def _create_server(self, body: dict[str, Any]) -> tuple[int, Any]:
        spec = body["server"]
        hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
        flavor_id = str(spec.get("flavorRef", "")).rsplit("/", 1)[-1]
        flavor = self.flavors.get(flavor_id) or self.reserved_flavors.get(flavor_id)
        if flavor is None or flavor.get("OS-FLV-DISABLED:disabled"):
            raise self._nova_error(400, f"Flavor {flavor_id} could not be found.")
        bdm = spec.get("block_device_mapping_v2") or []
        image = spec.get("imageRef") or ""
        if image and self.images.get(image, {}).get("status") != "active":
            raise self._nova_error(400, f"Image {image} could not be found.")
        if not image and not any(b.get("boot_index") in (0, "0") for b in bdm):
            raise self._nova_error(400, "Block Device Mapping is Invalid: no boot device")
        project = self.project["id"]
        usage = self._nova_quota(project)
        # what a lease reserved was paid for by the lease: no ordinary quota check
        leased = bool(hints.get("reservation")) or flavor_id in self.reserved_flavors
        for key, asked in () if leased else (("instances", 1), ("cores", flavor["vcpus"]),
                                             ("ram", flavor["ram"])):  # fmt: skip
            if usage[key]["in_use"] + asked > self.quota[key]:
                used = usage[key]["in_use"]
                raise Reply(403, _fill(self.errors["nova_quota"], what=key, req=asked,
                                       used=used, limit=self.quota[key]))  # fmt: skip
        groups = []
        for group in spec.get("security_groups") or [{"name": "default"}]:
            found = [g for g in self.security_groups.values()
                     if group["name"] in (g["name"], g["id"])]  # fmt: skip
            if not found and group["name"] != "default":
                raise self._nova_error(400, f"Security group {group['name']} not found.")
            groups += found
        nets = spec.get("networks") or []
        if not nets or nets == "auto":
            raise self._nova_error(400, "Networks must be given (stand-in)")
        for net in nets:
            if net.get("uuid") not in self.networks:
                raise self._nova_error(400, f"Network {net.get('uuid')} could not be found.")
        server_id = str(uuid.uuid4())
        fault = self.fault
        reservation = hints.get("reservation")
        if reservation and not self._reservation_active(reservation):
            fault = self.errors["no_valid_host"]["message"]
        attachments = []  # (volume id, device) in mapping order, as Nova lists them
        for entry, device in zip(bdm, self._devices(bdm), strict=True):
            volume_id = self._map_volume(server_id, entry, device)
            if volume_id:
                attachments.append((volume_id, device))
        for net in nets:
            self._add_port(net["uuid"], server_id, "compute:nova", [g["id"] for g in groups])
        server = {
            "id": server_id, "name": spec["name"], "status": "BUILD", "tenant_id": project,
            "user_id": "u-demo", "metadata": spec.get("metadata") or {},
            "flavor": {"id": flavor["id"], "links": []},
            "image": {"id": image, "links": []} if image else "",
            "OS-EXT-STS:vm_state": "building", "OS-EXT-STS:task_state": None,
            "OS-EXT-STS:power_state": 0, "OS-EXT-AZ:availability_zone":
                spec.get("availability_zone") or "nova",
            "security_groups": [{"name": g["name"]} for g in groups],
            "key_name": spec.get("key_name"), "hostId": "", "accessIPv4": "", "accessIPv6": "",
            "created": "2024-01-01T00:00:00Z", "updated": "2024-01-01T00:00:00Z",
            "config_drive": "", "progress": 0,
            "links": [{"rel": "self", "href": f"{self.url}/compute/v2.1/servers/{server_id}"}],
            "_user_data": spec.get("user_data"), "_hints": hints, "_bdm": bdm, "_fault": fault,
            "_attachments": attachments,
        }  # fmt: skip
        self.servers[server_id] = server
        return 202, {"server": {"id": server_id, "links": server["links"],
                                "OS-DCF:diskConfig": "MANUAL", "adminPass": "x",
                                "security_groups": server["security_groups"]}}  # fmt: skip

    @staticmethod
    def _devices(bdm: list[dict[str, Any]]) -> list[str]:
        """Nova's device names: the boot disk vda, the others as asked or the next free."""
        taken = {"/dev/vda"} | {e["device_name"] for e in bdm if e.get("device_name")}
        free = (f"/dev/vd{c}" for c in "bcdefghijklmnopqrstuvwxyz" if f"/dev/vd{c}" not in taken)
        return ["/dev/vda" if e.get("boot_index") in (0, "0") else e.get("device_name")
                or next(free) for e in bdm]  # fmt: skip

    def _map_volume(self, server_id: str, entry: dict[str, Any], device: str) -> str | None:
        """The volume a mapping entry attaches (made for it if blank or from an image)."""
        if entry.get("source_type") == "volume":
            volume = self.volumes.get(entry.get("uuid", ""))
            if volume is None or volume["status"] != "available":
                raise self._nova_error(400, f"Volume {entry.get('uuid')} could not be found.")
            volume |= {"status": "in-use", "_server": server_id, "_delete": False,
                       "_device": device}  # fmt: skip
            return str(volume["id"])
        if entry.get("destination_type") == "volume":
            volume_id = str(uuid.uuid4())
            self.volumes[volume_id] = {"id": volume_id, "status": "in-use",
                "size": entry.get("volume_size"), "volume_type": entry.get("volume_type"),
                "name": "", "_server": server_id, "_delete": entry.get("delete_on_termination"),
                "_device": device, "orbis": True}  # fmt: skip
            return volume_id
        return None  # a local (ephemeral) disk: no volume

    def _delete_server(self, server: dict[str, Any]) -> None:
        del self.servers[server["id"]]
        for port in [p for p in self.ports.values() if p["device_id"] == server["id"]]:
            for fip in self.floatingips.values():
                if fip["port_id"] == port["id"]:
                    fip |= {"port_id": None, "fixed_ip_address": None, "status": "DOWN"}
            del self.ports[port["id"]]
        for volume in [v for v in self.volumes.values() if v.get("_server") == server["id"]]:
            if volume.get("_delete"):
                del self.volumes[volume["id"]]
            elif volume.get("_later"):  # attached through the API: detached over a poll or two
                volume |= {"status": "detaching", "_polls": 0}
            else:
                volume |= {"status": "available", "_server": None}

    def _server_action(self, server: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        action = next(iter(body), "")
        status = server["status"]
        if action == "os-stop" and status == "ACTIVE":
            server |= {"status": "SHUTOFF", "OS-EXT-STS:vm_state": "stopped"}
        elif action == "os-start" and status == "SHUTOFF":
            server |= {"status": "ACTIVE", "OS-EXT-STS:vm_state": "active"}
        elif action == "reboot":
            server |= {"status": "HARD_REBOOT" if body["reboot"]["type"] == "HARD" else "REBOOT"}
        elif action == "resize" and status in ("ACTIVE", "SHUTOFF"):
            flavor_id = str(body["resize"]["flavorRef"])
            if flavor_id not in self.flavors:
                raise self._nova_error(400, f"Flavor {flavor_id} could not be found.")
            server |= {"status": "RESIZE", "_new_flavor": flavor_id}
        elif action == "confirmResize" and status == "VERIFY_RESIZE":
            server |= {"status": "ACTIVE", "OS-EXT-STS:vm_state": "active",
                       "flavor": {"id": server.pop("_new_flavor"), "links": []}}  # fmt: skip
        elif action == "createImage" and status in ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"):
            self._create_image(server, body["createImage"] or {})
        elif action in ("addSecurityGroup", "removeSecurityGroup"):
            name = body[action]["name"]
            group = next((g for g in self.security_groups.values() if g["name"] == name), None)
            if group is None:
                raise self._nova_error(404, f"Security group {name} not found")
            for port in self.ports.values():
                if port["device_id"] == server["id"]:
                    ids = [i for i in port["security_groups"] if i != group["id"]]
                    port["security_groups"] = ids + ([group["id"]] if action[0] == "a" else [])
            server["security_groups"] = [{"name": g["name"]} for g in self.security_groups.values()
                if any(g["id"] in p["security_groups"] for p in self.ports.values()
                       if p["device_id"] == server["id"])]  # fmt: skip
        else:
            state = server["OS-EXT-STS:vm_state"]
            raise self._nova_error(409, f"Cannot '{action}' instance {server['id']} while it "
                                        f"is in vm_state {state}")  # fmt: skip
        return 202, None

    # -- Neutron ------------------------------------------------------------------------------

    def _neutron_error(self, status: int, kind: str, message: str) -> Reply:
        return Reply(status, _fill(self.errors["neutron"], type=kind, message=message))

    def _add_network(self, net: dict[str, Any]) -> dict[str, Any]:
        subnets = net.pop("subnets", [])
        net |= {"status": "ACTIVE", "admin_state_up": True, "tenant_id": self.project["id"],
                "project_id": self.project["id"], "subnets": []}  # fmt: skip
        net.setdefault("tags", [])
        self.networks[net["id"]] = net
        for subnet in subnets:
            self._add_subnet(subnet | {"network_id": net["id"]})
        return net

    def _add_subnet(self, subnet: dict[str, Any]) -> dict[str, Any]:
        subnet.setdefault("ip_version", 4)
        subnet.setdefault("gateway_ip", str(next(ipaddress.ip_network(subnet["cidr"]).hosts())))
        subnet.setdefault("host_routes", [])
        subnet.setdefault("dns_nameservers", [])
        subnet |= {"enable_dhcp": True, "tags": subnet.get("tags", []),
                   "project_id": self.project["id"], "tenant_id": self.project["id"]}  # fmt: skip
        self.subnets[subnet["id"]] = subnet
        self.networks[subnet["network_id"]]["subnets"].append(subnet["id"])
        return subnet

    def _next_address(self, subnet: dict[str, Any]) -> str:
        index = self._next_ip.get(subnet["id"], 10)
        self._next_ip[subnet["id"]] = index + 1
        return str(ipaddress.ip_network(subnet["cidr"])[index])

    def _add_port(self, network_id: str, device: str, owner: str, groups: list[str],
                  subnet_id: str | None = None) -> dict[str, Any]:  # fmt: skip
        net = self.networks[network_id]
        subnet = self.subnets[subnet_id or net["subnets"][0]]
        port_id = str(uuid.uuid4())
        address = subnet["gateway_ip"] if owner.endswith("router_interface") else \
            self._next_address(subnet)  # fmt: skip
        port = {"id": port_id, "name": "", "network_id": network_id, "device_id": device,
                "device_owner": owner, "status": "ACTIVE", "admin_state_up": True,
                "mac_address": "fa:16:3e:" + ":".join(f"{b:02x}" for b in uuid.uuid4().bytes[:3]),
                "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": address}],
                "security_groups": groups, "project_id": self.project["id"], "tags": [],
                "port_security_enabled": True, "allowed_address_pairs": []}  # fmt: skip
        self.ports[port_id] = port
        return port

    def _neutron(self, method: str, path: str, query: dict[str, str], body: Any
                 ) -> tuple[int, Any]:  # fmt: skip
        path = path.removesuffix(".json")
        if m := re.fullmatch(r"/quotas/([^/]+)/details", path):
            return 200, {"quota": self._neutron_quota(m[1])}
        m = re.fullmatch(r"/([a-z-]+)(?:/([^/]+))?(?:/([a-z_]+))?", path)
        collections = {"networks": self.networks, "subnets": self.subnets, "ports": self.ports,
                       "routers": self.routers, "floatingips": self.floatingips,
                       "security-groups": self.security_groups,
                       "security-group-rules": None}  # fmt: skip
        if m is None or m[1] not in collections:
            raise self._neutron_error(404, "HTTPNotFound", f"{path} not found")
        name, item_id, verb = m[1], m[2], m[3]
        key = name.replace("-", "_")
        single = key[:-1] if key != "security_group_rules" else "security_group_rule"
        if name == "security-group-rules":
            return self._sg_rules(method, item_id, body)
        coll = collections[name]
        assert coll is not None
        if item_id is None:
            if method == "GET":
                return 200, {key: [r for r in coll.values() if self._matches(r, query)]}
            if method == "POST":
                return 201, {single: self._neutron_create(name, body[single])}
        record = coll.get(item_id or "")
        if record is None:
            raise self._neutron_error(404, f"{single.title()}NotFound",
                                      f"{single} {item_id} could not be found.")  # fmt: skip
        if verb == "tags" and method == "PUT":
            record["tags"] = list(body["tags"])
            return 200, {"tags": record["tags"]}
        if verb in ("add_router_interface", "remove_router_interface"):
            return 200, self._router_interface(record, verb, body)
        if method == "GET":
            return 200, {single: record}
        if method == "PUT":
            return 200, {single: self._neutron_update(name, record, body[single])}
        if method == "DELETE":
            self._neutron_delete(name, record)
            return 204, None
        raise self._neutron_error(405, "HTTPMethodNotAllowed", method)

    @staticmethod
    def _matches(record: dict[str, Any], query: dict[str, str]) -> bool:
        for key, wanted in query.items():
            if key in ("fields", "limit", "marker", "sort_key", "sort_dir"):
                continue
            if key == "tags":
                if not set(wanted.split(",")) <= set(record.get("tags", [])):
                    return False
            elif key in record and str(record[key]).lower() != wanted.lower():
                return False
        return True

    def _neutron_create(self, name: str, attrs: dict[str, Any]) -> dict[str, Any]:
        new_id = str(uuid.uuid4())
        attrs = dict(attrs)
        if name == "networks":
            return self._add_network(attrs | {"id": new_id, "router:external": False,
                                              "shared": False, "is_default": False,
                                              "description": attrs.get("description", "")})
        if name == "subnets":
            if attrs.get("network_id") not in self.networks:
                raise self._neutron_error(404, "NetworkNotFound", "network not found")
            cidr = ipaddress.ip_network(attrs["cidr"])
            if any(cidr.overlaps(ipaddress.ip_network(s["cidr"])) for s in self.subnets.values()
                   if s["network_id"] == attrs["network_id"]):  # fmt: skip
                raise self._neutron_error(400, "InvalidInput", "overlapping CIDR")
            return self._add_subnet(attrs | {"id": new_id})
        if name == "routers":
            gateway = attrs.get("external_gateway_info") or None
            if gateway and not self.networks.get(gateway["network_id"], {}).get("router:external"):
                raise self._neutron_error(400, "BadRequest", "network is not external")
            router = attrs | {"id": new_id, "status": "ACTIVE", "tags": [],
                              "external_gateway_info": gateway,
                              "project_id": self.project["id"]}  # fmt: skip
            self.routers[new_id] = router
            return router
        if name == "floatingips":
            net = self.networks.get(attrs.get("floating_network_id", ""))
            if not net or not net["router:external"]:
                raise self._neutron_error(404, "NetworkNotFound", "external network not found")
            if len(self.floatingips) >= self.quota["floating_ips"]:
                raise self._neutron_error(409, "OverQuota",
                    "Quota exceeded for resources: ['floatingip'].")  # fmt: skip
            address = self._next_address(self.subnets[net["subnets"][0]])
            fip = {"id": new_id, "floating_network_id": net["id"], "floating_ip_address": address,
                   "port_id": None, "fixed_ip_address": None, "status": "DOWN", "tags": [],
                   "description": attrs.get("description", ""), "router_id": None,
                   "project_id": self.project["id"]}  # fmt: skip
            self.floatingips[new_id] = fip
            if attrs.get("port_id"):
                self._neutron_update("floatingips", fip, {"port_id": attrs["port_id"]})
            return fip
        if name == "security-groups":
            if len(self.security_groups) >= self.quota["security_groups"]:
                raise self._neutron_error(409, "OverQuota",
                    "Quota exceeded for resources: ['security_group'].")  # fmt: skip
            group = {"id": new_id, "name": attrs.get("name", ""), "tags": [],
                     "description": attrs.get("description", ""), "project_id": self.project["id"],
                     "security_group_rules": []}  # fmt: skip
            self.security_groups[new_id] = group
            return group
        raise self._neutron_error(400, "BadRequest", f"cannot create {name}")

    def _neutron_update(self, name: str, record: dict[str, Any], attrs: dict[str, Any]
                        ) -> dict[str, Any]:  # fmt: skip
        if name == "floatingips" and "port_id" in attrs:
            port = self.ports.get(attrs["port_id"] or "")
            if attrs["port_id"] and port is None:
                raise self._neutron_error(404, "PortNotFound", "port not found")
            # a floating IP needs a router between the pool and the port's network
            if port and not any((r.get("external_gateway_info") or {}).get("network_id") ==
                                record["floating_network_id"] and any(
                                    p["device_id"] == r["id"] and p["network_id"] ==
                                    port["network_id"] for p in self.ports.values())
                                for r in self.routers.values()):  # fmt: skip
                raise self._neutron_error(404, "ExternalGatewayForFloatingIPNotFound",
                    f"External network {record['floating_network_id']} is not reachable from "
                    f"subnet {port['fixed_ips'][0]['subnet_id']}.")  # fmt: skip
            record |= {"port_id": attrs["port_id"], "status": "ACTIVE" if port else "DOWN",
                       "fixed_ip_address": port["fixed_ips"][0]["ip_address"] if port else None}
            return record
        if name == "routers" and "external_gateway_info" in attrs:
            record["external_gateway_info"] = attrs["external_gateway_info"] or None
            return record
        if name == "ports":
            return self._update_port(record, attrs)
        if name == "subnets" and "host_routes" in attrs:
            for route in attrs["host_routes"]:
                try:
                    ipaddress.ip_network(route["destination"])
                    ipaddress.ip_address(route["nexthop"])
                except (KeyError, ValueError):
                    raise self._neutron_error(400, "InvalidInput",
                        f"Invalid data format for hostroute: {route}") from None  # fmt: skip
            record["host_routes"] = [dict(r) for r in attrs["host_routes"]]
        record |= {k: v for k, v in attrs.items() if k in ("name", "description")}
        return record

    def _update_port(self, port: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
        """Neutron's rules: no security groups nor address pairs without port security."""
        groups = attrs.get("security_groups", port["security_groups"])
        secured = attrs.get("port_security_enabled", port["port_security_enabled"])
        pairs = attrs.get("allowed_address_pairs", port["allowed_address_pairs"])
        if any(g not in self.security_groups for g in groups):
            raise self._neutron_error(404, "SecurityGroupNotFound", f"groups {groups} not found")
        if not secured and groups:
            raise self._neutron_error(409, "PortSecurityPortHasSecurityGroup", "Port has "
                "security group associated. Cannot disable port security or ip address until "
                "security group is removed")  # fmt: skip
        if not secured and pairs:
            raise self._neutron_error(409, "AddressPairAndPortSecurityRequired", "Port Security "
                "must be enabled in order to have allowed address pairs on a port.")  # fmt: skip
        for pair in pairs:
            try:
                ipaddress.ip_network(pair["ip_address"], strict=False)
            except (KeyError, ValueError):
                raise self._neutron_error(400, "InvalidInput",
                    f"Invalid allowed address pair {pair}") from None  # fmt: skip
        port |= {"security_groups": list(groups), "port_security_enabled": bool(secured),
                 "allowed_address_pairs": [{"mac_address": port["mac_address"]} | p
                                           for p in pairs]}  # fmt: skip
        port |= {k: v for k, v in attrs.items() if k in ("name", "description")}
        return port

    def _neutron_delete(self, name: str, record: dict[str, Any]) -> None:
        used_by = [p for p in self.ports.values() if p["device_owner"] != "network:dhcp"]
        if name == "networks" and any(p["network_id"] == record["id"] for p in used_by):
            raise self._neutron_error(409, "NetworkInUse", f"Unable to complete operation on "
                f"network {record['id']}. There are one or more ports still in use.")  # fmt: skip
        if name == "routers" and any(p["device_id"] == record["id"] for p in used_by):
            raise self._neutron_error(409, "RouterInUse",
                                      f"Router {record['id']} still has ports")  # fmt: skip
        if name == "security-groups" and self.sg_delete_conflicts > 0:
            self.sg_delete_conflicts -= 1  # a port elsewhere still holds it, for a while
            raise self._neutron_error(409, "SecurityGroupInUse",
                                      f"Security Group {record['id']} in use.")  # fmt: skip
        if name == "security-groups" and any(record["id"] in p["security_groups"]
                                             for p in self.ports.values()):  # fmt: skip
            raise self._neutron_error(409, "SecurityGroupInUse",
                                      f"Security Group {record['id']} in use.")  # fmt: skip
        if name == "networks":
            for subnet_id in record["subnets"]:
                self.subnets.pop(subnet_id, None)
        if name == "subnets":
            self.networks[record["network_id"]]["subnets"].remove(record["id"])
        getattr(self, name.replace("-", "_")).pop(record["id"])

    def _router_interface(self, router: dict[str, Any], verb: str, body: dict[str, Any]
                          ) -> dict[str, Any]:  # fmt: skip
        subnet = self.subnets.get(body.get("subnet_id", ""))
        if subnet is None:
            raise self._neutron_error(404, "SubnetNotFound", "subnet not found")
        if verb == "add_router_interface":
            port = self._add_port(subnet["network_id"], router["id"], "network:router_interface",
                                  [], subnet["id"])  # fmt: skip
        else:
            found = [p for p in self.ports.values() if p["device_id"] == router["id"]
                     and p["fixed_ips"][0]["subnet_id"] == subnet["id"]]  # fmt: skip
            if not found:
                raise self._neutron_error(404, "RouterInterfaceNotFoundForSubnet",
                                          "no interface for that subnet")  # fmt: skip
            port = found[0]
            del self.ports[port["id"]]
        return {"id": router["id"], "subnet_id": subnet["id"], "port_id": port["id"],
                "network_id": subnet["network_id"], "tenant_id": self.project["id"]}  # fmt: skip

    def _sg_rules(self, method: str, rule_id: str | None, body: Any) -> tuple[int, Any]:
        if method == "POST":
            rule = dict(body["security_group_rule"])
            group = self.security_groups.get(rule.get("security_group_id", ""))
            if group is None:
                raise self._neutron_error(404, "SecurityGroupNotFound", "group not found")
            fields = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max",
                      "remote_ip_prefix", "remote_group_id")  # fmt: skip
            rule.setdefault("ethertype", "IPv4")
            for old in group["security_group_rules"]:
                if all(old.get(f) == rule.get(f) for f in fields):
                    raise self._neutron_error(409, "SecurityGroupRuleExists",
                        f"Security group rule already exists. Rule id is {old['id']}.")  # fmt: skip
            rule["id"] = str(uuid.uuid4())
            group["security_group_rules"].append(rule)
            return 201, {"security_group_rule": rule}
        rules = [r for g in self.security_groups.values() for r in g["security_group_rules"]]
        if method == "GET" and rule_id is None:
            return 200, {"security_group_rules": rules}
        raise self._neutron_error(404, "SecurityGroupRuleNotFound", f"rule {rule_id}")

    def _neutron_quota(self, project: str) -> dict[str, Any]:
        used = {"floatingip": len(self.floatingips), "security_group": len(self.security_groups),
                "network": len(self.networks), "router": len(self.routers)}  # fmt: skip
        limits = {"floatingip": self.quota["floating_ips"],
                  "security_group": self.quota["security_groups"], "network": 100, "router": 10}
        return {k: {"used": used[k], "limit": limits[k], "reserved": 0} for k in used}

    # -- Glance and Cinder --------------------------------------------------------------------

    def _glance(self, method: str, path: str, query: dict[str, str], body: Any
                ) -> tuple[int, Any]:  # fmt: skip
        def view(image: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in image.items() if not k.startswith("_")} | {
                "self": f"/v2/images/{image['id']}", "schema": "/v2/schemas/image",
                "file": f"/v2/images/{image['id']}/file"}  # fmt: skip
        if method == "GET" and path == "/images":
            found = [view(i) for i in self.images.values() if self._matches(i, query)]
            return 200, {"images": found, "first": "/v2/images", "schema": "/v2/schemas/images"}
        m = re.fullmatch(r"/images/([^/]+)", path)
        if m is None or m[1] not in self.images:
            raise Reply(404, _fill(self.errors["glance_not_found"], id=m[1] if m else path))
        image = self.images[m[1]]
        if method == "GET":
            self._advance_image(image)
            return 200, view(image)
        if method == "PATCH":
            return 200, view(self._patch_image(image, body))
        if method == "DELETE":
            del self.images[image["id"]]
            self._release_volume(image)
            return 204, None
        raise self._glance_error(405, "Method Not Allowed", f"{method} is not allowed")

    def _glance_error(self, status: int, title: str, message: str) -> Reply:
        body = _fill(self.errors["glance"], title=title, message=message)
        return Reply(status, body | {"code": status})

    def _new_image(self, name: str, *, disk_format: str, container_format: str = "bare",
                   properties: dict[str, Any] | None = None, volume: str | None = None
                   ) -> dict[str, Any]:  # fmt: skip
        """A private Glance image in `queued`, as a snapshot or an upload starts one."""
        image_id = str(uuid.uuid4())
        image = {**(properties or {}), "id": image_id, "name": name, "status": "queued",
                 "visibility": "private", "disk_format": disk_format,
                 "container_format": container_format, "min_disk": 0, "min_ram": 0,
                 "size": None, "virtual_size": None, "checksum": None, "protected": False,
                 "os_hidden": False, "owner": self.project["id"], "tags": [],
                 "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
                 "_polls": 0, "_volume": volume}  # fmt: skip
        self.images[image_id] = image
        return image

    def _advance_image(self, image: dict[str, Any]) -> None:
        """One GET of an image being saved: queued -> saving -> active (or `image_fault`)."""
        if image["status"] not in ("queued", "saving"):
            return
        image["_polls"] += 1
        if image["_polls"] < self.image_polls:
            return
        image["_polls"] = 0
        if image["status"] == "queued":
            image["status"] = "saving"
            return
        image["status"] = self.image_fault or "active"
        if image["status"] == "active":
            image |= {"size": 1073741824, "checksum": uuid.uuid4().hex}
        self._release_volume(image)

    def _release_volume(self, image: dict[str, Any]) -> None:
        """The volume an upload came from leaves `uploading` once its image is done or gone."""
        volume = self.volumes.get(image.pop("_volume", None) or "")
        if volume and volume["status"] == "uploading":
            volume["status"] = volume.pop("_before_upload", "available")

    def _patch_image(self, image: dict[str, Any], ops: Any) -> dict[str, Any]:
        """Glance's json-patch (application/openstack-images-v2.1-json-patch) on properties."""
        kind = self._headers.get("Content-Type", "")
        if kind != "application/openstack-images-v2.1-json-patch" or not isinstance(ops, list):
            raise self._glance_error(415, "Unsupported Media Type",
                                     f"Content type {kind} is not supported")  # fmt: skip
        read_only = {"id", "status", "created_at", "updated_at", "size", "virtual_size",
                     "checksum", "owner", "self", "file", "schema", "locations"}  # fmt: skip
        for op in ops:
            key = str(op.get("path", "")).lstrip("/")
            if key in read_only or key.startswith("_"):
                raise self._glance_error(403, "Forbidden", f"Attribute '{key}' is read-only.")
            if op.get("op") in ("add", "replace"):
                image[key] = op.get("value")
            elif op.get("op") == "remove" and key in image:
                del image[key]
            else:
                raise self._glance_error(409, "Conflict", f"Property {key} does not exist.")
        return image

    def _image_quota(self, service: str) -> None:
        """Refuse a new image over the project's image quota, in the calling service's words."""
        used = sum(1 for i in self.images.values() if i.get("owner") == self.project["id"])
        limit = self.quota["images"]
        if used < limit:
            return
        if service == "nova":
            raise Reply(403, _fill(self.errors["nova_quota"], what="images", req=1, used=used,
                                   limit=limit))  # fmt: skip
        message = f"Image quota exceeded ({used} of {limit} images)"
        raise Reply(413, _fill(self.errors["cinder_over_limit"], message=message))

    def _cinder(self, method: str, path: str, query: dict[str, str], body: Any
                ) -> tuple[int, Any]:  # fmt: skip
        def view(volume: dict[str, Any]) -> dict[str, Any]:
            attached = [{"server_id": volume["_server"], "device": volume.get("_device"),
                         "volume_id": volume["id"], "attachment_id": volume["id"]}] \
                if volume.get("_server") else []  # fmt: skip
            return {"metadata": {}} | {k: v for k, v in volume.items() if not k.startswith("_")} \
                | {"attachments": attached}  # fmt: skip
        if re.fullmatch(r"/os-quota-sets/[^/]+", path):
            in_use = len(self.volumes)
            gigabytes = sum(v.get("size") or 0 for v in self.volumes.values())
            return 200, {"quota_set": {"id": self.project["id"],
                "volumes": {"limit": self.quota["volumes"], "in_use": in_use, "reserved": 0},
                "gigabytes": {"limit": self.quota["gigabytes"], "in_use": gigabytes,
                              "reserved": 0}}}  # fmt: skip
        if method == "GET" and path in ("/volumes", "/volumes/detail"):
            return 200, {"volumes": [view(v) for v in self.volumes.values()]}
        if method == "POST" and path == "/volumes":
            return 202, {"volume": view(self._create_volume((body or {}).get("volume") or {}))}
        if method == "GET" and path == "/types":
            return 200, {"volume_types": list(self.volume_types.values())}
        if (m := re.fullmatch(r"/volumes/([^/]+)", path)) and m[1] in self.volumes:
            volume = self.volumes[m[1]]
            if method == "DELETE":
                self._delete_volume(volume)
                return 202, None
            self._advance_volume(volume)
            return 200, {"volume": view(volume)}
        m = re.fullmatch(r"/volumes/([^/]+)/action", path)
        if m and m[1] in self.volumes and method == "POST" and body:
            return self._volume_action(self.volumes[m[1]], body)
        raise Reply(404, {"itemNotFound": {"code": 404, "message": f"{path} not found"}})

    def _create_volume(self, asked: dict[str, Any]) -> dict[str, Any]:
        """Cinder's POST /volumes (a blank one): `creating`, within the project's quotas."""
        size = asked.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise Reply(400, _fill(self.errors["cinder_bad_request"], message=(
                f"Invalid input received: 'size' parameter must be an integer and greater than "
                f"0 (got {size!r})")))  # fmt: skip
        kind = asked.get("volume_type") or "__DEFAULT__"
        if kind not in self.volume_types:
            raise Reply(404, _fill(self.errors["cinder_not_found"],
                                   message=f"Volume type with name {kind} could not be found."))
        count, limit = len(self.volumes), self.quota["volumes"]
        if count + 1 > limit:
            raise Reply(413, _fill(self.errors["cinder_over_limit"], message=(
                f"Maximum number of volumes allowed ({limit}) exceeded for quota "
                "'volumes'.")))  # fmt: skip
        used, limit = sum(v.get("size") or 0 for v in self.volumes.values()), \
            self.quota["gigabytes"]  # fmt: skip
        if used + size > limit:
            raise Reply(413, _fill(self.errors["cinder_over_limit"], message=(
                f"Requested volume or snapshot exceeds allowed gigabytes quota. Requested "
                f"{size}G, quota is {limit}G and {used}G has been consumed.")))  # fmt: skip
        volume_id = str(uuid.uuid4())
        self.volumes[volume_id] = {
            "id": volume_id, "status": "creating", "size": size, "name": asked.get("name"),
            "description": asked.get("description"), "volume_type": kind,
            "metadata": {str(k): str(v) for k, v in (asked.get("metadata") or {}).items()},
            "availability_zone": asked.get("availability_zone") or "nova",
            "bootable": "false", "encrypted": False, "multiattach": False,
            "user_id": "u-demo", "os-vol-tenant-attr:tenant_id": self.project["id"],
            "created_at": "2024-01-01T00:00:00.000000", "updated_at": None, "_polls": 0}
        return self.volumes[volume_id]

    def _advance_volume(self, volume: dict[str, Any]) -> None:
        """One GET of a volume: creating -> available (or `volume_fault`), attaching -> in-use,
        detaching -> available, each after `volume_polls` GETs."""
        steps = {"creating": self.volume_fault or "available", "attaching": "in-use",
                 "detaching": "available"}  # fmt: skip
        if volume["status"] not in steps:
            return
        volume["_polls"] = volume.get("_polls", 0) + 1
        if volume["_polls"] < self.volume_polls:
            return
        if volume["status"] == "detaching":
            volume |= {"_server": None, "_device": None, "_later": False}
        volume |= {"status": steps[volume["status"]], "_polls": 0}

    def _delete_volume(self, volume: dict[str, Any]) -> None:
        """Cinder's DELETE: only a detached volume in a settled state (202, then gone)."""
        settled = ("available", "error", "error_restoring", "error_extending", "error_managing")
        if volume["status"] not in settled or volume.get("_server"):
            raise Reply(400, _fill(self.errors["cinder_bad_request"], message=(
                "Invalid volume: Volume status must be available or error or error_restoring "
                "or error_extending or error_managing and must not be migrating, attached, "
                "belong to a group, have snapshots or be disassociated from snapshots after "
                "volume transfer.")))  # fmt: skip
        del self.volumes[volume["id"]]

    def _volume_action(self, volume: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        """Cinder's os-volume_upload_image: the volume to a new Glance image (an attached one
        only with `force`); the volume is `uploading` until the image is done."""
        action = next(iter(body))
        if action != "os-volume_upload_image":
            raise Reply(400, _fill(self.errors["cinder_bad_request"],
                                   message=f"There is no such action: {action}"))  # fmt: skip
        asked = body[action] or {}
        force = str(asked.get("force", False)).lower() in ("true", "1", "yes", "on")
        status = volume["status"]
        if status not in ("available", "in-use") or (status == "in-use" and not force):
            raise Reply(400, _fill(self.errors["cinder_bad_request"], message=(
                f"Invalid volume: Volume {volume['id']} status must be available or in-use "
                f"with force, but current status is: {status}.")))  # fmt: skip
        if not asked.get("image_name"):
            raise Reply(400, _fill(self.errors["cinder_bad_request"],
                                   message="Invalid input: image_name is required"))  # fmt: skip
        self._image_quota("cinder")
        disk_format = asked.get("disk_format") or "raw"
        container_format = asked.get("container_format") or "bare"
        image = self._new_image(asked["image_name"], disk_format=disk_format,
                                container_format=container_format,
                                volume=volume["id"])  # fmt: skip
        volume |= {"_before_upload": status, "status": "uploading"}
        volume_type = volume.get("volume_type")
        return 202, {"os-volume_upload_image": {
            "id": volume["id"], "updated_at": "2024-01-01T00:00:00.000000",
            "status": "uploading", "display_description": volume.get("description"),
            "size": volume.get("size"), "image_id": image["id"], "image_name": image["name"],
            "volume_type": {"name": volume_type} if volume_type else None,
            "container_format": container_format, "disk_format": disk_format}}  # fmt: skip

    def add_volume(self, size: int = 1, name: str = "data") -> str:
        """An existing, available volume (as a user would have made), for attach tests."""
        volume_id = str(uuid.uuid4())
        self.volumes[volume_id] = {"id": volume_id, "status": "available", "size": size,
                                   "name": name, "volume_type": None, "metadata": {}}  # fmt: skip
        return volume_id

    # -- Blazar -------------------------------------------------------------------------------

    def _blazar_error(self, status: int, name: str, message: str) -> Reply:
        body = _fill(self.errors["blazar"], message=message, name=name)
        return Reply(status, body | {"error_code": status})

    def _reservation_active(self, reservation_id: str) -> bool:
        return any(r["id"] == reservation_id and r["status"] == "active"
                   and r["resource_type"] == "physical:host"
                   for le in self.leases.values() for r in le["reservations"])  # fmt: skip

    def _blazar(self, method: str, path: str, query: dict[str, str], body: Any
                ) -> tuple[int, Any]:  # fmt: skip
        if path == "/leases" and method == "GET":
            return 200, {"leases": [{k: v for k, v in le.items() if not k.startswith("_")}
                                    for le in self.leases.values()]}
        if path == "/leases" and method == "POST":
            return 201, {"lease": self._create_lease(body)}
        m = re.fullmatch(r"/leases/([^/]+)", path)
        lease = self.leases.get(m[1]) if m else None
        if lease is None:
            raise self._blazar_error(404, "NotFound", f"Object with {{'lease_id': '{path}'}} "
                                                      "not found")  # fmt: skip
        if method == "GET":
            self._advance_lease(lease)
            return 200, {"lease": {k: v for k, v in lease.items() if not k.startswith("_")}}
        if method == "DELETE":
            if lease["status"] in TRANSITIONAL or self.lease_delete_conflicts > 0:
                self.lease_delete_conflicts -= 1
                raise self._blazar_error(409, "InvalidStatus",
                    f"Lease {lease['id']} is in transitional state {lease['status']}")  # fmt: skip
            for reservation in lease["reservations"]:
                self.reserved_flavors.pop(reservation["id"], None)
            del self.leases[lease["id"]]
            return 204, None
        raise self._blazar_error(405, "MethodNotAllowed", method)

    def _create_lease(self, body: dict[str, Any]) -> dict[str, Any]:
        for key in ("start_date", "end_date"):
            value = body.get(key, "")
            if value != "now" and not re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", value):
                raise self._blazar_error(400, "InvalidDate",
                                         f"{key} {value!r} is not YYYY-MM-DD HH:MM")  # fmt: skip
        template = _fixture("blazar_lease")
        lease = template["lease"] | {"id": str(uuid.uuid4()), "name": body["name"],
            "start_date": body["start_date"], "end_date": body["end_date"],
            "project_id": self.project["id"], "events": body.get("events", []),
            "_polls": 0}  # fmt: skip
        busy = sum(int(r.get("max", 0)) for le in self.leases.values()
                   for r in le["reservations"] if r["resource_type"] == "physical:host")
        for asked in body.get("reservations", []):
            reservation = dict(template["reservation"]) | asked
            reservation |= {"id": str(uuid.uuid4()), "lease_id": lease["id"]}
            if asked["resource_type"] == "physical:host":
                wanted = re.findall(r'"\$node_type",\s*"([^"]+)"', asked.get("resource_properties")
                                    or "")  # fmt: skip
                hosts = [h for h in self.hosts if not wanted or h["node_type"] in wanted]
                if not 1 <= int(asked["min"]) <= int(asked["max"]):
                    raise self._blazar_error(400, "InvalidRange", "min/max out of range")
                if int(asked["min"]) > len(hosts) - busy:
                    raise self._blazar_error(409, "NotEnoughHostsAvailable",
                                             "Not enough hosts available")  # fmt: skip
            elif asked["resource_type"] == "virtual:instance":
                reservation |= {"flavor_id": reservation["id"], "server_group_id": None}
                self.reserved_flavors[reservation["id"]] = {
                    "id": reservation["id"], "name": f"reservation:{reservation['id']}",
                    "vcpus": asked["vcpus"], "ram": asked["memory_mb"], "disk": asked["disk_gb"],
                    "extra_specs": {"aggregate_instance_extra_specs:reservation":
                                    reservation["id"]}}  # fmt: skip
            else:
                raise self._blazar_error(400, "UnsupportedResourceType", asked["resource_type"])
            lease["reservations"].append(reservation)
        self.leases[lease["id"]] = lease
        return {k: v for k, v in lease.items() if not k.startswith("_")}

    def _advance_lease(self, lease: dict[str, Any]) -> None:
        lease["_polls"] += 1
        if lease["status"] == "PENDING" and lease["start_date"] == "now":
            lease["status"] = "STARTING"
        elif lease["status"] == "STARTING" and lease["_polls"] > self.lease_polls:
            lease["status"] = "ACTIVE"
            for reservation in lease["reservations"]:
                reservation["status"] = "active"
                reservation["missing_resources"] = self.lease_degraded
            lease["degraded"] = self.lease_degraded
