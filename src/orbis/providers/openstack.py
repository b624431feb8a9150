"""OpenStack clouds (and EGI FedCloud and Chameleon sites, which are OpenStack) via openstacksdk.

Follows what IM does on OpenStack, so templates behave the same: Keystone URLs normalised as IM
does, flavors chosen by IM's rule (placement/fit.py) from Nova's catalogue and extra_specs, the
public network and router found when the template does not name them, a private network made
when the project has none, one security group per template network (a network's `router`
node gets none, and no port security), floating IPs reused before allocated (private-range ones
refused), and the user's key delivered by cloud-init only.

Everything Orbis makes is marked: servers carry the labels as metadata, Neutron resources as
tags (`orbis.infrastructure=<id>`...), the Cinder volumes `add_disk` makes as metadata, so
`cleanup` and `list_owned` find them without the store.
Saved disks (`snapshot`: Nova's createImage for disk 0, Cinder's upload for a data volume) are
Glance images carrying the labels as properties; `cleanup` leaves them (IM's auto_delete is the
service's call) and `delete_image` removes only those.
On Chameleon, `reservation = host|instance` in the auth line launches into a Blazar lease
(providers/blazar.py).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import openstack.connection
import openstack.exceptions as os_exc
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v2, v3

from orbis.model.infrastructure import Compute, Network, PortSpec, Volume
from orbis.model.states import NodeState
from orbis.placement.fit import GB, MB, explain_no_fit, smallest_fitting
from orbis.providers import cloudinit
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    LABEL_NODE,
    LABEL_OWNER,
    LABEL_SSH_USER,
    LABEL_VM_ID,
    Flavor,
    Image,
    Machine,
    NodeSpec,
    NotFound,
    Provider,
    ProviderAuthError,
    ProviderError,
    QuotaExceeded,
    QuotaUse,
    Transient,
)
from orbis.providers.blazar import Blazar, Lease, ReservationSettings, lease_name

SG_DESCRIPTION = "Security group created by Orbis"
DEFAULT_CIDR = "10.0.*.0/24"
FIP_ATTEMPTS = 5  # IM tries to attach a floating IP 5 times, rotating over the ports
# server metadata: the RADL disk numbers that became Cinder volumes, in mapping order ("1,3")
DISKS_LABEL = "orbis.disks"
# Cinder metadata of a volume `add_disk` made (besides the server's labels): the server and the
# RADL disk number it was made for (destroy deletes it with that server; a retry reuses it)
SERVER_LABEL = "orbis.server"
DISK_LABEL = "orbis.disk"
# Cinder deletes a volume only in these
_VOLUME_DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")
_VOLUME_ATTACHING = ("reserved", "attaching", "in-use")
_ROOT_DEVICE = re.compile(r"/dev/(?:x?vd|sd|hd)a")  # Nova names the boot disk first
_IMAGE_FAILED = ("killed", "deleted", "pending_delete")  # Glance: the image will never be usable

# IM's private ranges: an address in none of them is public (Python's is_private says more)
_PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
            "169.254.0.0/16", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15")]  # fmt: skip

_STATES = dict.fromkeys(("ACTIVE", "VERIFY_RESIZE", "REBOOT", "HARD_REBOOT"), NodeState.RUNNING)
_STATES |= dict.fromkeys(("BUILD", "REBUILD", "RESIZE", "REVERT_RESIZE", "MIGRATING",
                          "PASSWORD", "RESCUE"), NodeState.PENDING)  # fmt: skip
_STATES |= {"SHUTOFF": NodeState.STOPPED, "SUSPENDED": NodeState.STOPPED}
_STATES |= {"DELETED": NodeState.OFF, "SOFT_DELETED": NodeState.OFF, "ERROR": NodeState.FAILED}


def is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        return ip.is_private
    return any(ip in net for net in _PRIVATE)


def _private_cidr(cidr: str) -> bool:
    net = ipaddress.ip_network(cidr, strict=False)
    if net.version == 6:
        return net.is_private
    return any(net.network_address in p and net.broadcast_address in p for p in _PRIVATE)


def keystone_base(host: str) -> str:
    """IM's auth URL: http unless said, default port for the scheme, `/` and `/v3` dropped."""
    parts = urlsplit(host if "://" in host else f"http://{host}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    # IM drops a path of exactly /v3; a versioned path under a prefix (/identity/v3) too,
    # since the plugins add the version themselves
    path = re.sub(r"/(v3|v2\.0)$", "", parts.path.rstrip("/"))
    return f"{parts.scheme}://{parts.hostname}:{port}{path}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower().replace("_", "-")).strip("-") or "node"


def _message(err: Exception) -> str:
    """The cloud's own words, without the SDK's 'Client Error for url' preamble."""
    if isinstance(err, os_exc.HttpException):
        return str(err.details or err.message or err)
    return str(getattr(err, "message", None) or err)


def _typed(status: int | None, message: str) -> ProviderError:
    text = message.lower()
    if status == 401:
        return ProviderAuthError(message)
    if status == 413 or "quota" in text or "no valid host" in text or "overquota" in text:
        return QuotaExceeded(message)
    if status == 404 or (status == 400 and "could not be found" in text):
        return NotFound(message)
    if status is not None and (status == 429 or status >= 500):
        return Transient(message)
    return ProviderError(message)


@dataclass
class _SiteNet:
    """A Neutron network as IM classifies it."""

    id: str
    name: str
    public: bool
    pool: bool  # router:external: floating IPs come from it
    tags: list[str] = field(default_factory=list)
    subnets: list[str] = field(default_factory=list)


def keypair_name(infrastructure_id: str) -> str:
    return f"orbis-{infrastructure_id}"


class OpenStackProvider(Provider):
    name = "openstack"

    def __init__(self, auth: Mapping[str, str], *, options: Mapping[str, Any] | None = None):
        self._auth = dict(auth)
        opts = dict(options or {})
        self.site = auth.get("id") or "openstack"
        if not auth.get("host"):
            raise ProviderError(f"{self.site}: the auth line has no host (Keystone URL)")
        self.base_url = keystone_base(auth["host"])
        self.host = urlsplit(self.base_url).hostname or ""
        self.region = auth.get("service_region") or opts.get("region") or None
        self.poll_interval = float(opts.get("poll_interval", 5))
        self.timeout = float(opts.get("timeout", 600))  # for a server/lease to be ready
        self.request_timeout = float(opts.get("request_timeout", 60))  # one HTTP call
        self.snapshot_timeout = float(opts.get("snapshot_timeout", 1800))  # a disk to an image
        self.reservation = ReservationSettings.read(auth, opts)
        self._conn: openstack.connection.Connection | None = None
        self._lock = threading.Lock()
        self._infra_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._fip_lock = threading.Lock()  # two nodes must not reuse the same free floating IP
        self._disk_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._flavors: tuple[float, list[Flavor]] | None = None

    # -- connection ---------------------------------------------------------------------------

    @property
    def conn(self) -> openstack.connection.Connection:
        with self._lock:
            if self._conn is None:
                with self._errors("authenticate"):
                    self._conn = self._connect()
            return self._conn

    def _plugin(self) -> Any:
        a = {k: str(v) for k, v in self._auth.items() if v is not None}
        kind = a.get("auth_version") or "2.0_password"
        url = f"{self.base_url}/v3"
        domain = a.get("domain") or "Default"
        scope: dict[str, Any]
        if kind == "3.x_password":
            if a.get("tenant_id"):
                scope = {"project_id": a["tenant_id"]}
            elif a.get("tenant_domain_id"):
                scope = {"project_name": a.get("tenant"),
                         "project_domain_id": a["tenant_domain_id"]}  # fmt: skip
            else:
                scope = {"project_name": a.get("tenant"), "project_domain_name": domain}
            return v3.Password(auth_url=url, username=a.get("username"),
                               password=a.get("password", ""), user_domain_name=domain,
                               **{k: v for k, v in scope.items() if v})  # fmt: skip
        if kind == "3.x_appcred":
            return v3.ApplicationCredential(auth_url=url,
                                            application_credential_id=a.get("username"),
                                            application_credential_secret=a.get("password", ""))
        if kind == "3.x_oidc_access_token":
            oidc: dict[str, Any] = {
                "auth_url": url, "identity_provider": a.get("username"),
                "protocol": a.get("tenant") or "openid", "access_token": a.get("password")}
            return v3.OidcAccessToken(**oidc, project_id=self._oidc_project(oidc))
        if kind == "2.0_password":
            return v2.Password(auth_url=f"{self.base_url}/v2.0", username=a.get("username"),
                               password=a.get("password"), tenant_name=a.get("tenant"),
                               tenant_id=a.get("tenant_id"))  # fmt: skip
        raise ProviderError(f"{self.site}: auth_version {kind} is not supported (use "
                            "3.x_password, 3.x_appcred, 3.x_oidc_access_token or 2.0_password)")

    def _oidc_project(self, oidc: dict[str, Any]) -> str:
        """IM's OIDC scoping: an unscoped federated token, then the project named in `domain`
        (by id or name) among the user's projects, else the first one."""
        unscoped = v3.OidcAccessToken(**oidc)
        sess = ks_session.Session(auth=unscoped, timeout=self.request_timeout)
        response = sess.get(f"{oidc['auth_url']}/auth/projects", raise_exc=True)
        projects = [p for p in response.json().get("projects", []) if p.get("enabled", True)]
        wanted = self._auth.get("domain")
        chosen = [p for p in projects if wanted in (p["id"], p["name"])] if wanted else projects
        if not chosen:
            raise NotFound(f"{self.site}: project {wanted or '(any)'} is not among this "
                           "identity's projects")  # fmt: skip
        return str(chosen[0]["id"])

    def _connect(self) -> openstack.connection.Connection:
        sess = ks_session.Session(auth=self._plugin(), timeout=self.request_timeout)
        sess.get_token()  # bad credentials fail here, with a clear error
        return openstack.connection.Connection(session=sess, region_name=self.region,
                                               app_name="orbis")  # fmt: skip

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """SDK and keystoneauth errors as the typed errors of base.py, in the cloud's words."""
        try:
            yield
        except ProviderError:
            raise
        except os_exc.HttpException as err:
            raise _typed(err.status_code, f"{self.site}: {what}: {_message(err)}") from None
        except ks_exc.Unauthorized:
            raise ProviderAuthError(f"{self.site}: {what}: credentials refused") from None
        except (ks_exc.ConnectFailure, ks_exc.ConnectTimeout, ks_exc.RequestTimeout) as err:
            raise Transient(f"{self.site}: {what}: {type(err).__name__}") from None
        except ks_exc.HttpError as err:
            raise _typed(err.http_status, f"{self.site}: {what}: {_message(err)}") from None
        except ks_exc.EndpointNotFound as err:
            raise ProviderError(f"{self.site}: {what}: {_message(err)}") from None
        except (ks_exc.ClientException, os_exc.SDKException) as err:
            raise ProviderError(f"{self.site}: {what}: {_message(err)}") from None

    # -- catalogue ----------------------------------------------------------------------------

    def flavors(self) -> list[Flavor]:
        if self._flavors and time.monotonic() - self._flavors[0] < 600:
            return self._flavors[1]
        with self._errors("list flavors"):
            found = []
            for flavor in self.conn.compute.flavors(details=True):
                if flavor.is_disabled:
                    continue
                specs = flavor.extra_specs
                if not specs:  # before microversion 2.61 they are a call of their own
                    specs = self.conn.compute.fetch_flavor_extra_specs(flavor).extra_specs
                found.append(_to_flavor(flavor, specs or {}))
        self._flavors = (time.monotonic(), found)
        return found

    def images(self) -> list[Image]:
        with self._errors("list images"):
            return [Image(id=i.id, name=i.name or i.id, url=f"ost://{self.host}/{i.id}",
                          os_distro=i.os_distro, os_version=i.os_version)
                    for i in self.conn.image.images() if i.status == "active"]  # fmt: skip

    def quotas(self) -> dict[str, QuotaUse]:
        conn, out = self.conn, {}
        with self._errors("quotas"):
            project = conn.current_project_id
            nova = self._get(conn.compute, f"/os-quota-sets/{project}/detail")["quota_set"]
            for key in ("cores", "ram", "instances"):
                out[key] = QuotaUse(nova[key]["in_use"] + nova[key].get("reserved", 0),
                                    nova[key]["limit"])  # fmt: skip
            with suppress(os_exc.SDKException, ks_exc.EndpointNotFound):  # Neutron's, if any
                neutron = self._get(conn.network, f"/quotas/{project}/details")["quota"]
                for key, name in (("floating_ips", "floatingip"),
                                  ("security_groups", "security_group")):  # fmt: skip
                    q = neutron[name]
                    out[key] = QuotaUse(q["used"] + q.get("reserved", 0), q["limit"])
            with suppress(os_exc.SDKException, ks_exc.EndpointNotFound):
                cinder = self._get(conn.block_storage,
                                   f"/os-quota-sets/{project}?usage=True")["quota_set"]
                for key, name in (("volumes", "volumes"), ("volume_storage", "gigabytes")):
                    q = cinder[name]
                    out[key] = QuotaUse(q["in_use"] + q.get("reserved", 0), q["limit"])
        return out

    @staticmethod
    def _get(proxy: Any, path: str) -> dict[str, Any]:
        response = proxy.get(path)
        os_exc.raise_from_response(response)
        body: dict[str, Any] = response.json()
        return body

    # -- verbs --------------------------------------------------------------------------------

    def prepare(self, infrastructure_id: str) -> None:
        """Networks and the security group depend on the nodes: `launch` makes them, once."""

    def launch(self, spec: NodeSpec) -> Machine:
        compute = spec.compute or Compute(
            name=spec.name, type="tosca.nodes.Compute", num_cpus=spec.num_cpus,
            mem_size=spec.mem_size, image=spec.image, public=spec.public,
            ports=list(spec.ports))  # fmt: skip
        node = f"{spec.name}.{spec.vm_id}"
        what = f"node {node} of {spec.infrastructure_id}"
        with self._errors(what):
            with self._infra_locks[spec.infrastructure_id]:  # IM: nets/SGs under the infra lock
                plan = self._plan_networks(spec, compute)
                groups = self._security_groups(spec, compute, plan)
            server = self._find_server(spec.infrastructure_id, node)
            warnings: tuple[str, ...] = ()
            if server is None:
                server, warnings = self._create_server(spec, compute, node, plan, groups)
            server = self._wait(server.id, what)
            if server.status == "ERROR":
                fault = (server.fault or {}).get("message") or "the server went to ERROR"
                with suppress(os_exc.SDKException):
                    self.conn.compute.delete_server(server)  # the next attempt starts clean
                raise _typed(None, f"{self.site}: {what}: {fault}")
            warnings += self._configure_ports(server, spec, compute, plan)
            if plan.fip_pools and not self._public_ips(server):
                self._attach_floating_ip(server, plan.fip_pools, spec, node)
                server = self.conn.compute.get_server(server.id)
            return self._machine(server, warnings)

    def inspect(self, provider_id: str) -> Machine:
        with self._errors(f"inspect {provider_id}"):
            server = self._server(provider_id)
            if server is None:
                return Machine(provider_id=provider_id, state=NodeState.OFF)
            if server.status == "VERIFY_RESIZE":  # IM confirms a resized server on sight
                self.conn.compute.confirm_server_resize(server)
            return self._machine(server)

    def destroy(self, provider_id: str) -> None:
        """IM's order: security groups and floating IPs off, the server, then its volumes: Nova
        deletes those of the boot-time mapping made with it, `add_disk`'s are deleted here once
        Nova has detached them; existing volumes are only detached (with the server)."""
        conn, what = self.conn, f"destroy {provider_id}"
        with self._errors(what):
            server = self._server(provider_id)
            if server is None:  # gone already (a retry): its volumes may not be
                self._delete_volumes(SERVER_LABEL, provider_id, what)
                return
            infra = (server.metadata or {}).get(LABEL_INFRASTRUCTURE)
            ours = {g.name for g in conn.network.security_groups()
                    if infra and _our_group(g, infra)}  # fmt: skip
            for group in server.security_groups or []:
                if group.get("name") in ours:
                    with suppress(os_exc.SDKException):
                        conn.compute.remove_security_group_from_server(server, group["name"])
            for port in conn.network.ports(device_id=server.id):
                for ip in conn.network.ips(port_id=port.id):
                    if _orbis_tags(ip.tags):  # allocated by us: released
                        conn.network.delete_ip(ip, ignore_missing=True)
                    else:  # reused or fixed: only detached
                        conn.network.update_ip(ip, port_id=None)
            conn.compute.delete_server(server, ignore_missing=True)
            with suppress(os_exc.ResourceNotFound):
                conn.compute.wait_for_delete(server, interval=self.poll_interval,
                                             wait=self.timeout)  # fmt: skip
            self._delete_volumes(SERVER_LABEL, str(server.id), what)

    def cleanup(self, infrastructure_id: str) -> None:
        conn, tag = self.conn, f"{LABEL_INFRASTRUCTURE}={infrastructure_id}"
        with self._errors(f"cleanup of {infrastructure_id}"):
            for server in self._servers(infrastructure_id):
                self.destroy(server.id)
            # volumes add_disk made and never attached (a crash in between)
            self._delete_volumes(LABEL_INFRASTRUCTURE, infrastructure_id,
                                 f"cleanup of {infrastructure_id}")  # fmt: skip
            blazar = self._blazar()
            if blazar.available():
                blazar.delete(lease_name(infrastructure_id))
            conn.compute.delete_keypair(keypair_name(infrastructure_id), ignore_missing=True)
            for ip in conn.network.ips(tags=tag):
                conn.network.delete_ip(ip, ignore_missing=True)
            # shared resources last: the security groups (ours only), then networks and routers
            for group in [g for g in conn.network.security_groups()
                          if _our_group(g, infrastructure_id)]:  # fmt: skip
                self._retry_conflict(lambda g=group: conn.network.delete_security_group(g))
            routers = list(conn.network.routers())
            for net in conn.network.networks(tags=tag):
                for router in routers:
                    for subnet in net.subnet_ids or []:
                        with suppress(os_exc.NotFoundException, os_exc.BadRequestException):
                            conn.network.remove_interface_from_router(router, subnet=subnet)
                for port in conn.network.ports(network_id=net.id):
                    conn.network.delete_port(port, ignore_missing=True)
                self._retry_conflict(lambda n=net: conn.network.delete_network(n))
            for router in conn.network.routers(tags=tag):
                for port in conn.network.ports(device_id=router.id):
                    for fixed in port.fixed_ips or []:
                        with suppress(os_exc.NotFoundException):
                            conn.network.remove_interface_from_router(
                                router, subnet=fixed["subnet_id"])
                self._retry_conflict(lambda r=router: conn.network.delete_router(r))

    def list_owned(self) -> list[Machine]:
        with self._errors("list servers"):
            return [self._machine(s) for s in self.conn.compute.servers(details=True)
                    if self._mine(s.metadata or {})]  # fmt: skip

    def owned_infrastructures(self) -> set[str]:
        conn, found = self.conn, super().owned_infrastructures()
        with self._errors("list networks"):
            for resource in [*conn.network.networks(), *conn.network.security_groups()]:
                labels = dict(t.split("=", 1) for t in resource.tags or [] if "=" in t)
                if self._mine(labels):
                    found.add(labels[LABEL_INFRASTRUCTURE])
        with self._errors("list volumes"):
            found |= {str(v.metadata[LABEL_INFRASTRUCTURE]) for v in self._labelled_volumes()}
        return found

    def stop(self, provider_id: str) -> None:
        with self._errors(f"stop {provider_id}"):
            self.conn.compute.stop_server(provider_id)

    def start(self, provider_id: str) -> None:
        with self._errors(f"start {provider_id}"):
            self.conn.compute.start_server(provider_id)

    def reboot(self, provider_id: str) -> None:
        with self._errors(f"reboot {provider_id}"):
            self.conn.compute.reboot_server(provider_id, "HARD")  # IM reboots hard

    def alter(self, provider_id: str, num_cpus: float | None, mem_size: int | None) -> None:
        """Resize to the flavor IM's rule picks for the new sizes, then confirm it."""
        conn, what = self.conn, f"resize {provider_id}"
        with self._errors(what):
            server = conn.compute.get_server(provider_id)
            current = self._current_flavor(server)
            wanted = Compute(name=server.name, type="resize",
                             num_cpus=num_cpus or (current.vcpus if current else None),
                             mem_size=mem_size or (current.ram_mb * MB if current else None))
            flavor = self._choose_flavor(wanted)
            if current and flavor.id == current.id:
                return
            conn.compute.resize_server(server, flavor.id)
            server = self._wait(server.id, what, until=("VERIFY_RESIZE",), need_address=False)
            if server.status == "ERROR":
                raise ProviderError(f"{self.site}: {what}: {(server.fault or {}).get('message')}")
            conn.compute.confirm_server_resize(server)

    # -- disks added to a running server ------------------------------------------------------

    def add_disk(self, provider_id: str, volume: Volume) -> str:
        """IM's alterVM with a new disk: a blank Cinder volume (named and labelled like the
        server, plus SERVER_LABEL and DISK_LABEL, so destroy and cleanup find it) waited for
        until `available`, or the existing volume `volume_id`, which must be available; either
        attached through Nova and waited for until `in-use`, the disk number then appended to
        the server's DISKS_LABEL (what `snapshot` counts by). Returns Cinder's device for the
        attachment (Nova's answer when Cinder names none). A retry after a crash reuses the
        volume made for the same server and disk."""
        what = f"add disk {volume.index} to {provider_id}"
        blank = not volume.volume_id
        if blank and (volume.type or "").lower() == "ephemeral":
            raise ProviderError(f"{self.site}: {what}: an ephemeral disk can only be made when "
                                "the server boots; give it a volume type")  # fmt: skip
        if blank and not volume.size:
            raise ProviderError(f"{self.site}: {what}: the disk has neither a size nor a volume")
        with self._errors(what), self._disk_locks[provider_id]:
            server = self._server(provider_id)
            if server is None:
                raise NotFound(f"{self.site}: {what}: server {provider_id} not found")
            if not self._mine(server.metadata or {}):  # its volumes would be no one's
                raise ProviderError(f"{self.site}: {what}: server {provider_id} was not made "
                                    "by this Orbis")  # fmt: skip
            numbers = self._disk_numbers(server)
            if volume.index in numbers:
                raise ProviderError(f"{self.site}: server {provider_id} already has disk "
                                    f"{volume.index}")  # fmt: skip
            if blank:
                target = self._blank_volume(server, volume, what)
            else:
                target = self._existing_volume(volume, what)
            device = self._attach(server, target, volume, what, made=blank)
            self.conn.compute.set_server_metadata(
                server, **{DISKS_LABEL: ",".join(map(str, [*numbers, volume.index]))})
            return device

    def _disk_numbers(self, server: Any) -> list[int]:
        """The RADL disk numbers of the server's data volumes, in attachment order (DISKS_LABEL;
        a server launched without the note: 1..N over its data volumes, as `_data_volume`)."""
        recorded = str((server.metadata or {}).get(DISKS_LABEL) or "")
        if recorded:
            return [int(n) for n in recorded.split(",") if n.strip().isdigit()]
        attached = [a for a in self.conn.compute.volume_attachments(server)
                    if not _ROOT_DEVICE.fullmatch(str(a.device or ""))]  # fmt: skip
        return list(range(1, len(attached) + 1))

    def _blank_volume(self, server: Any, volume: Volume, what: str) -> Any:
        """A new volume for disk `volume.index` of the server, `available` (the one a failed
        earlier attempt made, if any); one that ends in error is deleted."""
        conn, meta = self.conn, server.metadata or {}
        labels = {k: str(meta[k]) for k in (LABEL_INFRASTRUCTURE, LABEL_INSTALLATION,
                                            LABEL_NODE) if meta.get(k)}  # fmt: skip
        labels |= {SERVER_LABEL: str(server.id), DISK_LABEL: str(volume.index)}
        found = next((v for v in self._labelled_volumes()
                      if (v.metadata or {}).get(SERVER_LABEL) == labels[SERVER_LABEL]
                      and (v.metadata or {}).get(DISK_LABEL) == labels[DISK_LABEL]
                      and not str(v.status).startswith("error")), None)  # fmt: skip
        if found is None:
            infra, node = labels.get(LABEL_INFRASTRUCTURE), labels.get(LABEL_NODE)
            owner = f"{infra}-{node}" if infra and node else str(server.name or server.id)
            found = conn.block_storage.create_volume(
                name=_slug(f"orbis-{owner}-disk{volume.index}"), size=-(-(volume.size or 0) // GB),
                description=f"Disk {volume.index} of {owner}, created by Orbis",
                volume_type=volume.type or None, metadata=labels)  # fmt: skip
        label = f"volume {found.name} ({found.id})"
        if found.status in _VOLUME_ATTACHING:  # attached by the attempt that failed after it
            return found
        ready = self._wait_volume(found.id, "available", label, what)
        if ready.status != "available":
            with suppress(os_exc.SDKException):
                conn.block_storage.delete_volume(found.id, ignore_missing=True)
            raise ProviderError(f"{self.site}: {what}: {label} went to {ready.status}: the "
                                "cloud could not make it (deleted)")  # fmt: skip
        return ready

    def _existing_volume(self, volume: Volume, what: str) -> Any:
        """The volume `volume_id` names (its basename, as in the boot-time mapping), which
        must be `available`; it stays the user's: only ever detached."""
        ident = str(volume.volume_id).rstrip("/").rsplit("/", 1)[-1]
        try:
            found = self.conn.block_storage.get_volume(ident)
        except os_exc.NotFoundException:
            raise NotFound(f"{self.site}: {what}: volume {ident} not found") from None
        if found.status != "available":
            raise ProviderError(f"{self.site}: {what}: volume {found.name or ident} ({ident}) "
                                f"is {found.status}, not available")  # fmt: skip
        return found

    def _attach(self, server: Any, target: Any, volume: Volume, what: str, made: bool) -> str:
        """Attach `target` through Nova and wait for Cinder to say `in-use`; the device Cinder
        records for this server, else Nova's answer. A volume made here that will not attach is
        deleted (when Cinder lets it: cleanup gets the rest by its labels)."""
        conn, label = self.conn, f"volume {target.name or target.id} ({target.id})"
        answer = None
        try:
            if target.status == "available":
                device = {"device": f"/dev/vd{volume.device[-1]}"} if volume.device else {}
                answer = conn.compute.create_volume_attachment(server, target.id, **device)
            attached = self._wait_volume(target.id, "in-use", label, what)
            if attached.status != "in-use":
                raise ProviderError(f"{self.site}: {what}: {label} went to {attached.status} "
                                    "instead of attaching")  # fmt: skip
        except Exception:
            if made:
                with suppress(os_exc.SDKException):
                    conn.block_storage.delete_volume(target.id, ignore_missing=True)
            raise
        for attachment in attached.attachments or []:
            if attachment.get("server_id") == server.id and attachment.get("device"):
                return str(attachment["device"])
        return str(getattr(answer, "device", None) or "")

    def _wait_volume(self, volume_id: str, wanted: str, label: str, what: str) -> Any:
        """Poll Cinder until the volume is `wanted` or in an error status (returned either
        way); gone or still elsewhere after the timeout is an error naming it."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                found = self.conn.block_storage.get_volume(volume_id)
            except os_exc.NotFoundException:
                raise ProviderError(f"{self.site}: {what}: {label} vanished") from None
            if found.status == wanted or str(found.status).startswith("error"):
                return found
            if time.monotonic() > deadline:
                raise Transient(f"{self.site}: {what}: {label} still {found.status} after "
                                f"{self.timeout:g} s")  # fmt: skip
            time.sleep(self.poll_interval)

    def _labelled_volumes(self) -> list[Any]:
        """The Cinder volumes this installation made (add_disk's); none where there is no
        Cinder."""
        try:
            volumes = list(self.conn.block_storage.volumes())
        except (ks_exc.EndpointNotFound, os_exc.EndpointNotFound,
                os_exc.ServiceDisabledException):  # fmt: skip
            return []
        return [v for v in volumes if self._mine(v.metadata or {})]

    def _delete_volumes(self, key: str, value: str, what: str) -> None:
        """Delete our volumes whose label `key` is `value`, each once Cinder lets it (IM waits
        for `available`: Nova detaches them as the server goes)."""
        for found in self._labelled_volumes():
            if (found.metadata or {}).get(key) != value:
                continue
            label = f"volume {found.name or found.id} ({found.id})"
            deadline = time.monotonic() + self.timeout
            while found.status not in _VOLUME_DELETABLE:
                if time.monotonic() > deadline:
                    raise Transient(f"{self.site}: {what}: {label} still {found.status} after "
                                    f"{self.timeout:g} s")  # fmt: skip
                time.sleep(self.poll_interval)
                try:
                    found = self.conn.block_storage.get_volume(found.id)
                except os_exc.NotFoundException:
                    break
            else:
                self.conn.block_storage.delete_volume(found.id, ignore_missing=True)

    # -- disk snapshots -----------------------------------------------------------------------

    def snapshot(self, provider_id: str, disk: int, name: str) -> str:
        """Disk 0 through Nova's createImage, a data volume through Cinder's upload to Glance;
        either way the new Glance image carries the server's Orbis labels as properties (so
        `delete_image` knows it for ours) and is waited for until `active`. Cleanup leaves these
        images alone: whether they outlive the infrastructure is the service's call."""
        what = f"snapshot of disk {disk} of {provider_id}"
        with self._errors(what):
            server = self._server(provider_id)
            if server is None:
                raise NotFound(f"{self.site}: {what}: server {provider_id} not found")
            meta = server.metadata or {}
            labels = {k: str(meta[k]) for k in (LABEL_INFRASTRUCTURE, LABEL_INSTALLATION,
                                                LABEL_NODE) if meta.get(k)}  # fmt: skip
            if disk == 0:
                image = self.conn.compute.create_server_image(server, name, metadata=labels)
                if image is None:  # the SDK looks it up right after Nova answers
                    raise ProviderError(f"{self.site}: {what}: Nova made image {name} but "
                                        "Glance does not show it")  # fmt: skip
                image_id = str(image.id)
            else:
                volume_id = self._data_volume(server, disk)
                # an attached volume needs `force` (the site may refuse it: enable_force_upload)
                volumes = self.conn.block_storage
                answer = volumes.upload_volume_to_image(volume_id, name, force=True)
                image_id = str(answer["image_id"])
                if labels:  # Cinder's upload takes no properties: set them on the new image
                    self.conn.image.update_image(image_id, **labels)
            self._wait_image(image_id, name, what)
            return f"ost://{self.host}/{image_id}"

    def delete_image(self, url: str) -> None:
        what = f"delete image {url}"
        host, kind, ident = _ost_parts(url)
        if not url.startswith("ost://") or kind != "image" or not ident:
            raise ProviderError(f"{self.site}: {url} is not an OpenStack image URL")
        if host != self.host:
            raise ProviderError(f"{self.site}: image {url} belongs to another site "
                                f"(this one is {self.host})")  # fmt: skip
        with self._errors(what):
            try:
                image = self.conn.image.get_image(ident)
            except os_exc.NotFoundException:
                return
            if not self._mine(_image_labels(image)):
                raise ProviderError(f"{self.site}: image {image.name or ident} ({ident}) was not "
                                    "saved by Orbis here; it is left alone")  # fmt: skip
            self.conn.image.delete_image(ident, ignore_missing=True)

    def _data_volume(self, server: Any, disk: int) -> str:
        """The Cinder volume of RADL disk.`disk`: the data volumes in the order launch mapped
        them (the order Nova lists the attachments in), the boot volume left out; launch notes
        which disk numbers became volumes (ephemeral ones do not) under DISKS_LABEL."""
        missing = NotFound(f"{self.site}: server {server.id} has no disk {disk}")
        attached = [a for a in self.conn.compute.volume_attachments(server)
                    if not _ROOT_DEVICE.fullmatch(str(a.device or ""))]  # fmt: skip
        recorded = str((server.metadata or {}).get(DISKS_LABEL) or "")
        if recorded:
            numbers = [int(n) for n in recorded.split(",") if n.strip().isdigit()]
            if disk not in numbers:
                raise missing
            position = numbers.index(disk)
        else:  # a server launched without the note: the N-th data volume
            position = disk - 1
        if position < 0 or position >= len(attached):
            raise missing
        return str(attached[position].volume_id)

    def _wait_image(self, image_id: str, name: str, what: str) -> Any:
        """Poll Glance until the image is `active`; `killed`/`deleted` (removed, since no one
        can use it) or the snapshot timeout is an error that names the image."""
        deadline = time.monotonic() + self.snapshot_timeout
        label = f"image {name} ({image_id})"
        while True:
            try:
                image = self.conn.image.get_image(image_id)
            except os_exc.NotFoundException:
                raise ProviderError(f"{self.site}: {what}: {label} vanished while being "
                                    "saved") from None  # fmt: skip
            if image.status == "active":
                return image
            if image.status in _IMAGE_FAILED:
                with suppress(os_exc.SDKException):
                    self.conn.image.delete_image(image_id, ignore_missing=True)
                raise ProviderError(f"{self.site}: {what}: {label} is {image.status}: the "
                                    "cloud could not save the disk")  # fmt: skip
            if time.monotonic() > deadline:
                raise ProviderError(f"{self.site}: {what}: {label} still {image.status} after "
                                    f"{self.snapshot_timeout:g} s (it may yet finish)")  # fmt: skip
            time.sleep(self.poll_interval)

    # -- launch helpers -----------------------------------------------------------------------

    def _create_server(self, spec: NodeSpec, compute: Compute, node: str, plan: _NetPlan,
                       groups: list[str]) -> tuple[Any, tuple[str, ...]]:  # fmt: skip
        kind, image_id = self._image(compute.image or spec.image, compute)
        boot_size = -(-compute.disk_size // GB) if compute.disk_size else None
        attrs: dict[str, Any] = {}
        warnings: tuple[str, ...] = ()
        if self.reservation:
            lease = self._lease(spec, compute)
            warnings = lease.warnings
            attrs["scheduler_hints"] = lease.scheduler_hints() or None
            flavor_id = lease.flavor_id if lease.flavor_id else self._host_flavor(compute)
        else:
            # a boot volume of disk.0.size makes the flavor's disk irrelevant
            flavor_id = self._choose_flavor(compute, min_disk_gb=0 if boot_size else None).id
        user_data = spec.user_data or cloudinit.user_data(spec.ssh_public_key, user=spec.ssh_user)
        # the key by cloud-init (IM's way, for the login user), and as a Nova key pair too: the
        # image's own default user can then log in with it, whatever cloud-init does
        attrs["key_name"] = self._keypair(spec)
        labels = {**self._labels(spec.infrastructure_id), LABEL_NODE: node,
                  LABEL_VM_ID: str(spec.vm_id), LABEL_SSH_USER: spec.ssh_user}  # fmt: skip
        if spec.owner_mark:  # after the template's tags, which must not set it
            labels[LABEL_OWNER] = spec.owner_mark
        disks = _volume_disks(compute)
        if disks:
            labels[DISKS_LABEL] = ",".join(map(str, disks))  # what `snapshot` counts by
        attrs |= {
            "name": _slug(compute.instance_name or f"orbis-{spec.name}-{spec.vm_id}"),
            "flavor_id": flavor_id,
            "networks": [{"uuid": net_id} for net_id in plan.nics],
            "security_groups": [{"name": g} for g in groups],  # Nova takes ids for names
            "metadata": {**{str(k): str(v) for k, v in compute.tags.items()
                            if str(k) != LABEL_OWNER}, **labels},
            "user_data": base64.b64encode(user_data.encode()).decode(),
            "availability_zone": compute.availability_zone,
            "block_device_mapping": _block_devices(kind, image_id, boot_size, compute) or None,
            "image_id": image_id if kind == "image" else None,
        }
        server = self.conn.compute.create_server(**{k: v for k, v in attrs.items() if v})
        return server, warnings

    def _keypair(self, spec: NodeSpec) -> str | None:
        """The infrastructure's key pair (made once, shared by its nodes)."""
        if not spec.ssh_public_key:
            return None
        name = keypair_name(spec.infrastructure_id)
        if self.conn.compute.find_keypair(name) is None:
            # a conflict: another node of the infrastructure made it meanwhile
            with suppress(os_exc.ConflictException):
                self.conn.compute.create_keypair(name=name, public_key=spec.ssh_public_key)
        return name

    def owner_mark_of(self, provider_id: str) -> str | None:
        with self._errors(f"inspect {provider_id}"):
            server = self._server(provider_id)
        mark = (server.metadata or {}).get(LABEL_OWNER) if server is not None else None
        return str(mark) if mark else None

    def _server(self, provider_id: str) -> Any | None:
        try:
            return self.conn.compute.get_server(provider_id)
        except os_exc.NotFoundException:
            return None

    def _find_server(self, infrastructure_id: str, node: str) -> Any | None:
        for server in self.conn.compute.servers(details=True):
            meta = server.metadata or {}
            if meta.get(LABEL_INFRASTRUCTURE) == infrastructure_id and \
                    meta.get(LABEL_NODE) == node and self._mine(meta):  # fmt: skip
                return server
        return None

    def _servers(self, infrastructure_id: str) -> list[Any]:
        return [s for s in self.conn.compute.servers(details=True)
                if (s.metadata or {}).get(LABEL_INFRASTRUCTURE) == infrastructure_id
                and self._mine(s.metadata or {})]  # fmt: skip

    def _wait(self, server_id: str, what: str, until: tuple[str, ...] = ("ACTIVE",),
              need_address: bool = True) -> Any:  # fmt: skip
        """Poll until the server is in `until` (with an address) or ERROR."""
        deadline = time.monotonic() + self.timeout
        while True:
            server = self.conn.compute.get_server(server_id)
            if server.status == "ERROR" or (server.status in until
                                            and (server.addresses or not need_address)):
                return server
            if time.monotonic() > deadline:
                raise Transient(f"{self.site}: {what}: still {server.status} after "
                                f"{self.timeout:g} s")  # fmt: skip
            time.sleep(self.poll_interval)

    def _choose_flavor(self, compute: Compute, min_disk_gb: int | None = None) -> Flavor:
        flavors = self.flavors()
        if compute.num_gpus:  # a flavor with a bare "gpu" spec says no count: any count fits
            flavors = [replace(f, gpus=max(f.gpus, compute.num_gpus))
                       if f.extra.get("gpu_count_unknown") else f for f in flavors]  # fmt: skip
        chosen = smallest_fitting(flavors, compute, min_disk_gb=min_disk_gb)
        if chosen is None:
            raise NotFound(f"{self.site}: {explain_no_fit(flavors, compute)}")
        return chosen

    def _current_flavor(self, server: Any) -> Flavor | None:
        ref = server.flavor
        key = getattr(ref, "id", None) or getattr(ref, "original_name", None) or \
            getattr(ref, "name", None)  # fmt: skip
        return next((f for f in self.flavors() if key in (f.id, f.name)), None)

    def _image(self, wanted: str | None, compute: Compute) -> tuple[str, str]:
        """('image' | 'volume', id) for a template image: ost://host/id, ost://host/image/id,
        ost://host/volume/id, a bare id or a name; none at all → by os distribution/version."""
        if not wanted:
            matches = [i for i in self.images()
                       if compute.os_distribution and
                       compute.os_distribution.lower() in (i.os_distro or i.name).lower()
                       and (not compute.os_version or compute.os_version in
                            (i.os_version or i.name))]  # fmt: skip
            if not matches:
                raise NotFound(f"{self.site}: no image given for {compute.name} and none "
                               f"matches its operating system")  # fmt: skip
            return "image", matches[0].id
        kind, ident = "image", wanted
        if wanted.startswith("ost://"):
            host, kind, ident = _ost_parts(wanted)
            if host != self.host:
                raise NotFound(f"{self.site}: image {wanted} belongs to another site "
                               f"(this one is {self.host})")  # fmt: skip
        elif wanted.startswith("egi://"):  # an EGI AppDB image: its Glance id at this site
            from orbis.providers import egi  # only EGI users need the cloud-info client

            ident = egi.cloud_info().resolve_image(
                wanted, vo=self._auth.get("vo"), keystone_host=self.host)
        elif "://" in wanted:
            raise NotFound(f"{self.site}: {wanted} is not an OpenStack image URL")
        if kind == "volume":
            self.conn.block_storage.get_volume(ident)  # NotFound if it is not there
            return kind, ident
        try:
            image = self.conn.image.find_image(ident, ignore_missing=False)
        except os_exc.NotFoundException:
            image = None
        if image is None or image.status != "active":
            raise NotFound(f"{self.site}: image {wanted} not found (or not active)")
        return kind, image.id

    # -- networks -----------------------------------------------------------------------------

    def _site_networks(self) -> list[_SiteNet]:
        """Every network the project sees, classified and ordered as IM does."""
        conn = self.conn
        cidrs: dict[str, str] = {}
        for subnet in conn.network.subnets():
            if subnet.ip_version == 4:
                cidrs.setdefault(subnet.network_id, subnet.cidr)
        nets = []
        for net in conn.network.networks():
            pool = bool(net.is_router_external)
            cidr = cidrs.get(net.id)
            nets.append(_SiteNet(net.id, net.name, public=not _private_cidr(cidr) if cidr
                                 else pool, pool=pool, tags=list(net.tags or []),
                                 subnets=list(net.subnet_ids or [])))  # fmt: skip
            nets[-1].tags += ["default"] if net.is_default or "default" in \
                f"{net.name} {net.description}".lower() else []  # fmt: skip
        return sorted(nets, key=lambda n: "default" not in n.tags)

    def _plan_networks(self, spec: NodeSpec, compute: Compute) -> _NetPlan:
        """Which networks the server is plugged into and which pools give its public IP,
        creating the infrastructure's private network and router when the project has none."""
        wanted = _node_networks(spec, compute)
        site = self._site_networks()
        pools = [n for n in site if n.pool]
        private = [n for n in wanted if not n.public]
        public = [n for n in wanted if n.public]
        if public and not pools and not any("enable_two_nics" in n.tags for n in site):
            private = []  # no floating IPs here: the node sits on the provider network itself
        plan, used = _NetPlan(nets=[n for n in wanted if n.public or private]), set()
        for net in private:
            ours = f"orbis-{spec.infrastructure_id}-{_slug(net.name)}"
            found = _by_name(site, net.provider_id) if net.provider_id else None
            if net.provider_id and found is None:
                raise NotFound(f"{self.site}: network {net.provider_id} not found")
            found = found or _by_name(site, ours) or (None if net.create else next(
                (n for n in site if not n.public and not n.pool and n.id not in used
                 and not _orbis_tags(n.tags)), None))  # another infrastructure's is not ours
            if found is None:
                found = self._create_network(spec.infrastructure_id, ours, net, site, public)
            if found.id in used:
                raise ProviderError(f"{self.site}: network {found.name} is used twice")
            used.add(found.id)
            plan.nics.append(found.id)
            plan.ids[net.name] = found.id
        for net in public:
            named = _by_name(site, net.provider_id) if net.provider_id else None
            if net.provider_id and named is None:
                raise NotFound(f"{self.site}: public network {net.provider_id} not found")
            if plan.nics and pools and (named is None or named.pool):
                # public through a floating IP: the named pool first, then the others
                plan.fip_pools += sorted(pools, key=lambda p: p is not named)
                continue
            direct = named or next((n for n in site if n.public and not n.pool
                                    and n.id not in used), None) or (pools[0] if pools else None)
            if direct is None:
                raise NotFound(f"{self.site}: no public network for {net.name}")
            if direct.pool and plan.nics:
                raise ProviderError(f"{self.site}: {direct.name} is a floating-IP pool; it is "
                                    "only attached as a node's sole interface")  # fmt: skip
            used.add(direct.id)
            plan.nics.append(direct.id)
            plan.ids[net.name] = direct.id
            plan.public = True
        if not plan.nics:
            raise NotFound(f"{self.site}: no network to attach {compute.name} to")
        return plan

    def _create_network(self, infra: str, name: str, net: Network, site: list[_SiteNet],
                        public: list[Network]) -> _SiteNet:  # fmt: skip
        """A private network + subnet on a free CIDR, plugged into a router to the outside."""
        conn = self.conn
        taken = [ipaddress.ip_network(s.cidr) for s in conn.network.subnets() if s.ip_version == 4]
        cidr = _free_cidr(net.cidr or DEFAULT_CIDR, taken)
        created = conn.network.create_network(name=name,
                                              description=f"Network created by Orbis for {infra}")
        conn.network.set_tags(created, self._tags(infra))
        subnet = conn.network.create_subnet(name=f"{name}-subnet", network_id=created.id,
                                            ip_version=4, cidr=cidr)  # fmt: skip
        pools = [n for n in site if n.pool]
        if pools:
            named = {p.provider_id for p in public if p.provider_id}
            preferred = sorted(pools, key=lambda p: (p.name not in named, not p.public))
            # the site's router to the outside; another infrastructure's would go with it
            routers = [r for r in conn.network.routers() if not _orbis_tags(r.tags)]
            router = next((r for pool in preferred for r in routers
                           if (r.external_gateway_info or {}).get("network_id") == pool.id), None)
            if router is None:
                router = conn.network.create_router(
                    name=f"orbis-{infra}", external_gateway_info={"network_id": preferred[0].id})
                conn.network.set_tags(router, self._tags(infra))
            conn.network.add_interface_to_router(router, subnet=subnet.id)
        return _SiteNet(created.id, name, public=False, pool=False, subnets=[subnet.id])

    def _security_groups(self, spec: NodeSpec, compute: Compute, plan: _NetPlan) -> list[str]:
        """IM's groups: one per template network of the node, none for a node that routes."""
        if _routes(spec, compute):
            return []  # its ports go without port security (_configure_ports)
        infra = spec.infrastructure_id
        # the node's own ports open where it is reached: its public side, else its first net
        front = next((n for n in plan.nets if n.public), plan.nets[0] if plan.nets else None)
        groups = []
        for net in plan.nets:
            ports = list(net.outports)
            if net is front:
                ports += [*compute.ports, *spec.ports]
            if net.public or net.proxy_host:
                ports.append(PortSpec(22))
            groups.append(self._group(infra, net.sg_name or f"orbis-{infra}-{net.name}", ports))
        return groups

    def _group(self, infra: str, name: str, ports: list[PortSpec]) -> str:
        """The group named `name` (looked up first, made and marked if missing) with the
        members' own traffic and `ports` open; its id."""
        conn = self.conn

        def lookup() -> Any:
            found = conn.network.security_groups(name=name, project_id=conn.current_project_id)
            return next(iter(found), None)

        group = lookup()
        if group is None:
            try:
                group = conn.network.create_security_group(
                    name=name, description=f"{SG_DESCRIPTION} for {infra}")
            except os_exc.ConflictException:  # made meanwhile elsewhere (or over quota)
                group = lookup()
                if group is None:
                    raise
            else:
                conn.network.set_tags(group, self._tags(infra))
        rules: list[dict[str, Any]] = [{"protocol": proto, "port_range_min": 1,
                                        "port_range_max": 65535, "remote_group_id": group.id}
                                       for proto in ("tcp", "udp")]  # fmt: skip
        rules += [_rule(p) for p in dict.fromkeys(ports)]
        for rule in rules:
            with suppress(os_exc.ConflictException):  # already there (another node added it)
                conn.network.create_security_group_rule(
                    security_group_id=group.id, direction="ingress", ethertype="IPv4", **rule)
        return str(group.id)

    def _configure_ports(self, server: Any, spec: NodeSpec, compute: Compute,
                         plan: _NetPlan) -> tuple[str, ...]:  # fmt: skip
        """What Nova cannot say at boot: `additional_ip` as allowed address pairs; for a node
        that routes for a network, no port security and the subnet's host route through it."""
        conn, routes = self.conn, _routes(spec, compute)
        extra: dict[str, list[str]] = {}  # Neutron network id -> additional addresses
        for iface in compute.interfaces:
            if iface.additional_ip and iface.network in plan.ids:
                extra.setdefault(plan.ids[iface.network], []).extend(
                    a.strip() for a in iface.additional_ip.split(",") if a.strip())
        ports = list(conn.network.ports(device_id=server.id))
        for port in ports:
            if routes:
                if port.is_port_security_enabled or port.security_group_ids:
                    # Neutron refuses to drop port security while the port has groups
                    conn.network.update_port(port, security_group_ids=[],
                                             is_port_security_enabled=False)  # fmt: skip
                continue
            pairs = list(port.allowed_address_pairs or [])
            known = {p.get("ip_address") for p in pairs}
            new = [{"ip_address": a} for a in extra.get(port.network_id, []) if a not in known]
            if new:
                conn.network.update_port(port, allowed_address_pairs=pairs + new)
        warnings = []
        with self._infra_locks[spec.infrastructure_id]:  # two routers: one subnet update each
            for net, cidr in routes:
                on_net = next((p for p in ports if p.network_id == plan.ids.get(net.name)), None)
                fixed = next((f for f in (on_net.fixed_ips if on_net else [])
                              if ":" not in f["ip_address"]), None)  # fmt: skip
                if fixed is None:
                    warnings.append(f"{self.site}: {compute.name} routes {cidr} for network "
                                    f"{net.name} but has no address on it")  # fmt: skip
                    continue
                subnet = conn.network.get_subnet(fixed["subnet_id"])
                route = {"destination": cidr, "nexthop": fixed["ip_address"]}
                current = list(subnet.host_routes or [])
                if route not in current:  # a new address replaces the old route
                    conn.network.update_subnet(subnet, host_routes=[
                        *(r for r in current if r.get("destination") != cidr), route])
        return tuple(warnings)

    def _attach_floating_ip(self, server: Any, pools: list[_SiteNet], spec: NodeSpec,
                            node: str) -> None:  # fmt: skip
        """IM's way: reuse a free IP of the pool, else allocate one (a private-range one is
        released and the next pool tried), attach it trying the node's ports in turn."""
        conn = self.conn
        ports = list(conn.network.ports(device_id=server.id))
        if not ports:
            raise ProviderError(f"{self.site}: node {node} has no port for a floating IP")
        errors: list[str] = []
        for pool in dict.fromkeys(p.id for p in pools):
            with self._fip_lock:
                ip = next((i for i in conn.network.ips(floating_network_id=pool)
                           if not i.port_id and not _orbis_tags(i.tags)
                           and not is_private(i.floating_ip_address)), None)  # fmt: skip
                created = ip is None
                ip = ip or self._new_floating_ip(pool, spec.infrastructure_id, node, errors)
                if ip is None:
                    continue
                for attempt in range(FIP_ATTEMPTS):
                    try:
                        conn.network.update_ip(ip, port_id=ports[attempt % len(ports)].id)
                        return
                    except os_exc.HttpException as err:
                        errors.append(_message(err))
                        time.sleep(self.poll_interval)
                if created:
                    conn.network.delete_ip(ip, ignore_missing=True)
        raise _typed(None, f"{self.site}: no floating IP for {node}: {'; '.join(errors)}")

    def _new_floating_ip(self, pool: str, infra: str, node: str, errors: list[str]) -> Any:
        """A floating IP allocated (and tagged) for `node`; None if the pool has no public one."""
        conn = self.conn
        try:
            ip = conn.network.create_ip(floating_network_id=pool, description=f"Orbis {node}")
        except os_exc.HttpException as err:
            errors.append(_message(err))
            return None
        conn.network.set_tags(ip, [*self._tags(infra), f"{LABEL_NODE}={node}"])
        if is_private(ip.floating_ip_address):  # some pools are NATed: useless from outside
            conn.network.delete_ip(ip)
            errors.append(f"pool {pool} gave private address {ip.floating_ip_address}")
            return None
        return ip

    # -- Blazar -------------------------------------------------------------------------------

    def _blazar(self) -> Blazar:
        return Blazar(self.conn.session, site=self.site, region=self.region,
                      poll_interval=self.poll_interval, timeout=self.timeout)  # fmt: skip

    def _lease(self, spec: NodeSpec, compute: Compute) -> Lease:
        assert self.reservation is not None
        entry = self.reservation.reservation(
            max(compute.count, 1), compute.num_cpus, compute.mem_size,
            -(-compute.disk_size // GB) if compute.disk_size else None)  # fmt: skip
        with self._infra_locks[spec.infrastructure_id]:
            return self._blazar().ensure(lease_name(spec.infrastructure_id), self.reservation,
                                         entry)  # fmt: skip

    def _host_flavor(self, compute: Compute) -> str:
        """Bare-metal reservations: the site's bare-metal flavor when it has one."""
        assert self.reservation is not None
        named = [f for f in self.flavors() if f.name == self.reservation.flavor]
        return named[0].id if named else self._choose_flavor(compute).id

    # -- labels and machines ------------------------------------------------------------------

    def _labels(self, infrastructure_id: str) -> dict[str, str]:
        labels = {LABEL_INFRASTRUCTURE: infrastructure_id}
        if self.installation:
            labels[LABEL_INSTALLATION] = self.installation
        return labels

    def _tags(self, infrastructure_id: str) -> list[str]:
        return [f"{k}={v}" for k, v in self._labels(infrastructure_id).items()]

    def _mine(self, labels: Mapping[str, str]) -> bool:
        if LABEL_INFRASTRUCTURE not in labels:
            return False
        return not self.installation or labels.get(LABEL_INSTALLATION) == self.installation

    def _retry_conflict(self, call: Any) -> None:
        """Deletes that Neutron refuses (409) while ports go away, retried as IM does."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                call()
                return
            except os_exc.NotFoundException:
                return
            except os_exc.ConflictException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(self.poll_interval)

    @staticmethod
    def _public_ips(server: Any) -> list[str]:
        return [a["addr"] for addrs in (server.addresses or {}).values() for a in addrs
                if a.get("OS-EXT-IPS:type") == "floating" or not is_private(a["addr"])]

    def _machine(self, server: Any, warnings: tuple[str, ...] = ()) -> Machine:
        meta = server.metadata or {}
        private = [a["addr"] for addrs in (server.addresses or {}).values() for a in addrs
                   if a.get("OS-EXT-IPS:type") != "floating" and is_private(a["addr"])]
        public = self._public_ips(server)
        state = _STATES.get(str(server.status).upper(), NodeState.UNKNOWN)
        if state == NodeState.FAILED and server.fault:
            warnings += (str(server.fault.get("message")),)
        vm_id = str(meta.get(LABEL_VM_ID, ""))
        return Machine(
            provider_id=server.id, state=state,
            private_ip=private[0] if private else None, public_ip=public[0] if public else None,
            ssh_user=meta.get(LABEL_SSH_USER, "cloudadm"),
            infrastructure_id=meta.get(LABEL_INFRASTRUCTURE),
            vm_id=int(vm_id) if vm_id.isdigit() else None, warnings=warnings)  # fmt: skip


@dataclass
class _NetPlan:
    nics: list[str] = field(default_factory=list)  # network ids, in interface order
    fip_pools: list[_SiteNet] = field(default_factory=list)  # where a floating IP comes from
    public: bool = False  # plugged straight into a public network
    nets: list[Network] = field(default_factory=list)  # template networks kept for the node
    ids: dict[str, str] = field(default_factory=dict)  # template network -> Neutron id (NICs)


def _our_group(group: Any, infrastructure_id: str) -> bool:
    """Made by Orbis for this infrastructure: its tag, or its description if tagging failed."""
    return f"{LABEL_INFRASTRUCTURE}={infrastructure_id}" in (group.tags or []) or \
        group.description == f"{SG_DESCRIPTION} for {infrastructure_id}"  # fmt: skip


def _routes(spec: NodeSpec, compute: Compute) -> list[tuple[Network, str]]:
    """(network, cidr) for each template network whose `router = "cidr,system"` names this
    node as the system."""
    found = []
    for net in spec.networks:
        cidr, _, system = (net.router or "").partition(",")
        if cidr.strip() and system.strip() in (spec.name, compute.name):
            found.append((net, cidr.strip()))
    return found


def _ost_parts(url: str) -> tuple[str, str, str]:
    """(host name, 'image' | 'volume', id) of ost://host[:port]/[image/|volume/]id."""
    host, _, path = url.removeprefix("ost://").partition("/")
    parts = path.strip("/").split("/")
    kind = parts[0] if len(parts) == 2 and parts[0] in ("image", "volume") else "image"
    return urlsplit(f"//{host}").hostname or "", kind, parts[-1]


def _image_labels(image: Any) -> dict[str, str]:
    """The Orbis labels of a Glance image (custom properties, which the SDK gathers)."""
    props = dict(image.properties or {})
    return {k: str(v) for k, v in props.items() if k.startswith("orbis.")}


def _volume_disks(compute: Compute) -> list[int]:
    """The RADL disk numbers `_block_devices` maps to Cinder volumes, in its order."""
    return [v.index for v in sorted(compute.volumes, key=lambda v: v.index)
            if v.volume_id or (v.size and (v.type or "").lower() != "ephemeral")]  # fmt: skip


def _orbis_tags(tags: list[str] | None) -> bool:
    return any(t.startswith(f"{LABEL_INFRASTRUCTURE}=") for t in tags or [])


def _by_name(site: list[_SiteNet], name: str | None) -> _SiteNet | None:
    return next((n for n in site if n.name == name), None) if name else None


def _node_networks(spec: NodeSpec, compute: Compute) -> list[Network]:
    """The template networks this node connects to, in interface order."""
    by_name = {n.name: n for n in spec.networks}
    names = [i.network for i in sorted(compute.interfaces, key=lambda i: i.order)]
    if not names:
        names = [n.name for n in spec.networks if not n.public][:1] or ["private"]
        if spec.public or compute.public:
            names += [n.name for n in spec.networks if n.public][:1] or ["public"]
    return [by_name.get(n) or Network(name=n, public=n == "public") for n in names]


def _free_cidr(pattern: str, taken: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """The first CIDR matching `pattern` (`*` = 0..255) that overlaps no existing subnet."""
    if "*" not in pattern:
        return pattern
    for index in range(256):
        candidate = ipaddress.ip_network(pattern.replace("*", str(index), 1).replace("*", "0"))
        if not any(candidate.overlaps(t) for t in taken if t.version == candidate.version):
            return str(candidate)
    raise QuotaExceeded(f"no free network range matches {pattern}")


def _rule(port: PortSpec) -> dict[str, Any]:
    rule: dict[str, Any] = {"protocol": port.protocol.lower(),
                            "remote_ip_prefix": port.remote_cidr or "0.0.0.0/0"}  # fmt: skip
    if rule["protocol"] != "icmp":
        rule |= {"port_range_min": port.port, "port_range_max": port.range_end or port.port}
    return rule


def _block_devices(kind: str, image_id: str, boot_size: int | None,
                   compute: Compute) -> list[dict[str, Any]]:  # fmt: skip
    """IM's boot-time mapping: the boot disk, existing volumes kept, blank ones deleted with the
    server; devices named vdX. Empty when Nova's default (the image on local disk) will do."""
    if kind == "volume":
        boot = {"boot_index": 0, "uuid": image_id, "source_type": "volume",
                "destination_type": "volume", "delete_on_termination": False}  # fmt: skip
    elif boot_size:
        boot = {"boot_index": 0, "uuid": image_id, "source_type": "image",
                "destination_type": "volume", "volume_size": boot_size,
                "delete_on_termination": True}  # fmt: skip
    else:
        boot = {"boot_index": 0, "uuid": image_id, "source_type": "image",
                "destination_type": "local", "delete_on_termination": True}  # fmt: skip
    extra = []
    for volume in sorted(compute.volumes, key=lambda v: v.index):
        entry: dict[str, Any] = {"boot_index": -1}
        if volume.volume_id:
            entry |= {"uuid": volume.volume_id.rstrip("/").rsplit("/", 1)[-1],
                      "source_type": "volume", "destination_type": "volume",
                      "delete_on_termination": False}  # fmt: skip
        elif volume.size:
            ephemeral = (volume.type or "").lower() == "ephemeral"
            entry |= {"source_type": "blank", "volume_size": -(-volume.size // GB),
                      "destination_type": "local" if ephemeral else "volume",
                      "guest_format": volume.fs_type or "ext3",
                      "delete_on_termination": True}  # fmt: skip
            if volume.type and not ephemeral:
                entry["volume_type"] = volume.type
        else:
            continue
        if volume.device:
            entry["device_name"] = f"/dev/vd{volume.device[-1]}"
        extra.append(entry)
    if kind == "image" and not boot_size and not extra:
        return []
    return [boot, *extra]


def _to_flavor(flavor: Any, specs: Mapping[str, Any]) -> Flavor:
    """A Nova flavor with IM's reading of its extra_specs (GPUs, SGX, PCI devices)."""
    specs = {str(k): str(v) for k, v in specs.items()}
    gpus, vendor, model, unknown = 0, None, None, False
    if specs.get("Accelerator:Type", "").lower() == "gpu":  # the EGI convention
        number = specs.get("Accelerator:Number", "1")
        gpus = int(number) if number.isdigit() else 1
        vendor, model = specs.get("Accelerator:Vendor"), specs.get("Accelerator:Model")
    elif any("gpu" in k.lower() and v.lower() not in ("false", "no", "0", "")
             for k, v in specs.items()):  # fmt: skip
        gpus, unknown = 1, True
    pci = 0
    for alias in specs.get("pci_passthrough:alias", "").split(","):
        count = alias.rpartition(":")[2].strip()
        pci += int(count) if count.isdigit() else 0
    return Flavor(
        id=str(flavor.id), name=str(flavor.name), vcpus=int(flavor.vcpus or 0),
        ram_mb=int(flavor.ram or 0), disk_gb=int(flavor.disk or 0), gpus=gpus,
        gpu_vendor=vendor, gpu_model=model, sgx=any("sgx" in k.lower() for k in specs),
        pci_devices=pci, extra={"extra_specs": specs, "gpu_count_unknown": unknown})  # fmt: skip
