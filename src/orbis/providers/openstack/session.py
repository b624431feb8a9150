"""Keystone authentication, the SDK connection, typed errors and the lookups every concern shares.

The auth line's Keystone URL is normalised as IM does (`keystone_base`); auth_version picks the
plugin (v3 password, application credential, OIDC access token with IM's project scoping, v2
password). `_errors` turns SDK and keystoneauth errors into the typed errors of
providers/base.py, in the cloud's words. Also here: IM's private address ranges, Orbis labels
and tags, and finding a server by id, by node or by infrastructure.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import openstack.connection
import openstack.exceptions as os_exc
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v2, v3

from orbis.net.endpoints import url_refusal
from orbis.net.guarded import guarded_requests_session, refusal_in
from orbis.providers.base import (
    LABEL_INFRASTRUCTURE,
    LABEL_INSTALLATION,
    LABEL_NODE,
    Flavor,
    NotFound,
    Provider,
    ProviderAuthError,
    ProviderError,
    QuotaExceeded,
    Transient,
)
from orbis.providers.blazar import ReservationSettings

# IM's private ranges: an address in none of them is public (Python's is_private says more)
_PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
            "169.254.0.0/16", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15")]  # fmt: skip


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


def _orbis_tags(tags: list[str] | None) -> bool:
    return any(t.startswith(f"{LABEL_INFRASTRUCTURE}=") for t in tags or [])


class OpenStackSession(Provider):
    """Session, errors, labels and server lookups shared by the OpenStack mixins."""

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
        # a user's own cloud (not the operator's): the endpoints its Keystone hands back get
        # the address rule of the auth URL, set by placement/sites.py
        self.check_catalogue = bool(opts.get("check_catalogue", False))
        # and every connection is checked when made (net/guarded.py: no DNS rebinding)
        self.guard_connections = bool(opts.get("guard_connections", False))
        self.reservation = ReservationSettings.read(auth, opts)
        self._conn: openstack.connection.Connection | None = None
        self._lock = threading.Lock()
        self._infra_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._fip_lock = threading.Lock()  # two nodes must not reuse the same free floating IP
        self._disk_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._flavors: tuple[float, list[Flavor]] | None = None

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
        sess = self._session(unscoped)
        response = sess.get(f"{oidc['auth_url']}/auth/projects", raise_exc=True)
        projects = [p for p in response.json().get("projects", []) if p.get("enabled", True)]
        wanted = self._auth.get("domain")
        chosen = [p for p in projects if wanted in (p["id"], p["name"])] if wanted else projects
        if not chosen:
            raise NotFound(f"{self.site}: project {wanted or '(any)'} is not among this "
                           "identity's projects")  # fmt: skip
        return str(chosen[0]["id"])

    def _session(self, plugin: Any) -> ks_session.Session:
        http = guarded_requests_session() if self.guard_connections else None
        return ks_session.Session(auth=plugin, timeout=self.request_timeout, session=http)

    def _connect(self) -> openstack.connection.Connection:
        sess = self._session(self._plugin())
        sess.get_token()  # bad credentials fail here, with a clear error
        if self.check_catalogue:
            self._check_catalogue(sess)
        return openstack.connection.Connection(session=sess, region_name=self.region,
                                               app_name="orbis")  # fmt: skip

    def _check_catalogue(self, sess: ks_session.Session) -> None:
        """Refuse a catalogue whose public endpoints (the ones openstacksdk calls) are not
        public addresses: a user's own Keystone could otherwise point the server at the
        metadata service or an internal host. Internal and admin endpoints are never called."""
        access = sess.auth.get_access(sess)  # type: ignore[union-attr]
        for service in access.service_catalog.catalog or []:
            for endpoint in service.get("endpoints") or []:
                public = endpoint.get("interface") == "public" or "publicURL" in endpoint
                url = endpoint.get("url") or endpoint.get("publicURL")
                if not public or not url:
                    continue
                refusal = url_refusal(str(url), f"the Keystone catalogue's {service.get('type')} "
                                      "endpoint")  # fmt: skip
                if refusal is not None:
                    raise ProviderError(f"{self.site}: {refusal}: endpoints a user's cloud "
                                        "hands back must be public addresses")  # fmt: skip

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
            refusal = refusal_in(str(err))  # the address rule (net/guarded.py): not transient
            if refusal is not None:
                raise ProviderError(f"{self.site}: {what}: {refusal}") from None
            raise Transient(f"{self.site}: {what}: {type(err).__name__}") from None
        except ks_exc.HttpError as err:
            raise _typed(err.http_status, f"{self.site}: {what}: {_message(err)}") from None
        except ks_exc.EndpointNotFound as err:
            raise ProviderError(f"{self.site}: {what}: {_message(err)}") from None
        except (ks_exc.ClientException, os_exc.SDKException) as err:
            raise ProviderError(f"{self.site}: {what}: {_message(err)}") from None

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
