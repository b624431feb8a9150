"""The sites a user can deploy on, the provider that talks to each, and what each offers.

A site is one cloud account: an IM auth line of the caller (`id = ost; type = OpenStack; ...`),
or a site the operator configured for everyone (ORBIS_SITES, a YAML list of auth lines). EGI
lines (`type = EGI` / `EGIIS`) expand into the OpenStack sites of the VO. `Local` (and a request
with no cloud line at all) means the server's own back-end (containers).

Providers are built once per (site, credentials) and reused; what a site offers (images, flavors,
quotas) is cached for `ttl` seconds, because asking a cloud takes seconds and placement asks for
every node.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orbis.net.endpoints import endpoint_refusal
from orbis.providers.base import Flavor, Image, Provider, ProviderError, QuotaUse

log = logging.getLogger(__name__)

LOCAL_TYPES = {"local", "docker", "orbis"}
# a site of the local back-end with a private network of its own (providers/local_sites.py)
LOCAL_SITE_TYPES = {"localsite"}
# IM auth-line type (lower-case) -> "module:class" of the provider that serves it
PROVIDER_CLASSES = {
    "openstack": "orbis.providers.openstack:OpenStackProvider",
    "ec2": "orbis.providers.ec2:EC2Provider",
    "kubernetes": "orbis.providers.kubernetes:KubernetesProvider",
}
EGI_TYPES = {"egi", "egiis"}
# Lines that are not clouds: IM's own credentials, and tools IM talks to
NOT_CLOUDS = {"infrastructuremanager", "vaultcredentials", "openid"}


@dataclass(frozen=True)
class Site:
    """One place nodes can go."""

    id: str
    type: str  # as written in the auth line (OpenStack, EC2, Local...)
    auth: Mapping[str, str] = field(repr=False, compare=False)  # secret: never shown
    preference: int = 0  # position in the user's lines: lower is preferred
    shared: bool = False  # configured by the operator rather than given by the caller
    warning: str | None = None  # e.g. "EGI site X does not support VO y"

    @property
    def local(self) -> bool:
        """On the server's own back-end (containers), as the default or as a local site."""
        return self.type.lower() in LOCAL_TYPES | LOCAL_SITE_TYPES

    @property
    def own_network(self) -> bool:
        """A local site: its nodes get a private network of their own, reached by SSH jump."""
        return self.type.lower() in LOCAL_SITE_TYPES

    @property
    def default_backend(self) -> bool:
        """The server's own back-end itself (no site of its own recorded on nodes)."""
        return self.local and not self.own_network

    @property
    def host(self) -> str:
        return self.auth.get("host", "")


@dataclass
class SiteInfo:
    """What a site offers, as last asked."""

    site: Site
    flavors: list[Flavor] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    quotas: dict[str, QuotaUse] = field(default_factory=dict)
    error: str | None = None
    unusable: bool = False  # Orbis cannot drive this site at all (its cloud type, say)
    fetched_at: float = 0.0


class UnsupportedSite(ProviderError):
    """A site no provider can drive: no point trying it, now or later."""


class EndpointRefused(UnsupportedSite):
    """A user's site whose endpoint is not a public address (net/endpoints.py)."""


def configured_sites(path: str | None = None) -> list[dict[str, str]]:
    """The operator's sites (ORBIS_SITES: a YAML file with a list of auth-line mappings).
    A value written `env:NAME` is read from the environment, so secrets stay out of the file."""
    path = path or os.environ.get("ORBIS_SITES")
    if not path:
        return []
    data = yaml.safe_load(Path(path).read_text()) or []
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of sites")
    lines = []
    for entry in data:
        line = {
            str(k): os.environ.get(str(v)[4:], "") if str(v).startswith("env:") else str(v)
            for k, v in dict(entry).items()
        }
        lines.append(line)
    return lines


class SiteRegistry:
    """Sites, their providers and their cached catalogue."""

    def __init__(
        self, default: Provider, *, operator_lines: Iterable[Mapping[str, str]] = (),
        ttl: float = 600.0, options: Mapping[str, Any] | None = None,
        classes: Mapping[str, Any] | None = None,
    ) -> None:  # fmt: skip
        self.default = default
        # cloud type -> provider class or "module:class" (more kinds can be plugged in)
        self.classes = dict(PROVIDER_CLASSES if classes is None else classes)
        self.operator_lines = [dict(line) for line in operator_lines]
        self.ttl = ttl
        self.options = dict(options or {})
        self._providers: dict[tuple[str, str], Provider] = {}
        self._info: dict[tuple[str, str], SiteInfo] = {}
        self._lock = threading.Lock()
        # one builder per key: concurrent nodes of one site wait for a single login (and a
        # single catalogue read) instead of each doing it
        self._building: dict[tuple[str, tuple[str, str]], threading.Lock] = {}

    # -- which sites ----------------------------------------------------------------------
    def sites_for(self, cloud_lines: Iterable[Mapping[str, str]]) -> list[Site]:
        """The sites of a caller: its cloud lines in order, then the operator's; the local
        back-end when neither names any cloud."""
        sites: list[Site] = []
        lines = [dict(x) for x in cloud_lines if x.get("type", "").lower() not in NOT_CLOUDS]
        for shared, group in ((False, lines), (True, self.operator_lines)):
            for line in group:
                for site in self._expand(line, shared=shared):
                    if all(s.id != site.id for s in sites):
                        sites.append(Site(site.id, site.type, site.auth, len(sites), shared,
                                          site.warning))  # fmt: skip
        if not sites:
            sites.append(Site("local", "Local", {}, 0, True))
        return sites

    def _expand(self, line: Mapping[str, str], *, shared: bool) -> list[Site]:
        kind = line.get("type", "")
        site_id = line.get("id") or kind.lower()
        if kind.lower() in EGI_TYPES:
            return self._egi_sites(line, shared=shared)
        return [Site(site_id, kind, line, 0, shared)]

    def _egi_sites(self, line: Mapping[str, str], *, shared: bool) -> list[Site]:
        try:
            egi = importlib.import_module("orbis.providers.egi")
            lines, warnings = egi.expand_auth([dict(line)])
        except Exception as exc:  # EGI discovery unreachable: say so on a site of its own
            site_id = line.get("id") or "egi"
            return [Site(site_id, line.get("type", "EGI"), line, 0, shared,
                         f"EGI discovery failed: {exc}")]  # fmt: skip
        note = "; ".join(warnings) or None
        return [Site(x.get("id") or x.get("host", "egi"), "OpenStack", x, 0, shared, note)
                for x in lines]  # fmt: skip

    # -- providers ------------------------------------------------------------------------
    def provider(self, site: Site) -> Provider:
        """The provider for a site (built once per site and credentials)."""
        if site.default_backend:
            return self.default
        key = (site.id, _fingerprint(site.auth))
        if site.own_network:
            return self._local_site(site, key)
        with self._lock:
            found = self._providers.get(key)
            if found is not None:
                return found
        with self._once("provider", key):
            with self._lock:
                found = self._providers.get(key)
            return found if found is not None else self._build(site, key)

    def _local_site(self, site: Site, key: tuple[str, str]) -> Provider:
        from orbis.providers.local import LocalProvider
        from orbis.providers.local_sites import LocalSiteProvider

        if not isinstance(self.default, LocalProvider):
            raise UnsupportedSite(f"site {site.id}: local sites need the local back-end (the "
                                  f"server runs '{self.default.name}')")  # fmt: skip
        with self._lock:
            found = self._providers.get(key)
            if found is None:
                try:
                    found = LocalSiteProvider(self.default, site.id)
                except ValueError as exc:
                    raise UnsupportedSite(str(exc)) from None
                self._providers[key] = found
            return found

    def _once(self, what: str, key: tuple[str, str]) -> threading.Lock:
        with self._lock:
            return self._building.setdefault((what, key), threading.Lock())

    def _build(self, site: Site, key: tuple[str, str]) -> Provider:
        kind = site.type.lower()
        target = self.classes.get(kind)
        if target is None:
            raise UnsupportedSite(f"site {site.id}: clouds of type {site.type} are not supported "
                                f"(supported: Local, OpenStack, EGI, EC2, Kubernetes)")  # fmt: skip
        if isinstance(target, str):
            module, cls_name = target.split(":")
            cls = getattr(importlib.import_module(module), cls_name)
        else:
            cls = target
        if not site.shared:  # a user's endpoint: the address rule, before any connection
            refusal = endpoint_refusal(site.auth, kind)
            if refusal is not None:
                raise EndpointRefused(f"site {site.id}: {refusal}")
        options = dict(self.options.get(kind) or {})
        options["check_catalogue"] = not site.shared  # what a user's Keystone hands back
        options["guard_connections"] = not site.shared  # checked at connect too (rebinding)
        provider: Provider = cls(site.auth, options=options)
        provider.site = site.id
        if "ssh_timeout" in options:  # how long nodes of this kind may take to answer SSH
            provider.ssh_timeout = float(options["ssh_timeout"])
        provider.installation = self.default.installation
        with self._lock:
            return self._providers.setdefault(key, provider)

    def provider_by_id(self, site_id: str | None, cloud_lines: Iterable[Mapping[str, str]]
                       ) -> Provider:  # fmt: skip
        """The provider a node recorded as `site_id` runs on (None: the default back-end)."""
        if not site_id or site_id == "local":
            return self.default
        for site in self.sites_for(cloud_lines):
            if site.id == site_id:
                return self.provider(site)
        raise ProviderError(f"site {site_id}: no credentials for it any more")

    # -- what a site offers -----------------------------------------------------------------
    def info(self, site: Site, *, refresh: bool = False) -> SiteInfo:
        """Flavors, images and quotas of a site, from the cache when fresh enough. Failures
        are kept in `error` (and cached too, so a dead site is not asked for every node)."""
        key = (site.id, _fingerprint(site.auth))
        asked = time.monotonic()
        with self._once("info", key):
            cached = self._info.get(key)
            # a read that finished while this caller waited counts as a refresh too
            if cached is not None and (cached.fetched_at >= asked if refresh
                                       else asked - cached.fetched_at < self.ttl):  # fmt: skip
                return cached
            info = SiteInfo(site, fetched_at=time.monotonic())
            try:
                provider = self.provider(site)
                info.flavors = provider.flavors()
                info.images = provider.images()
                info.quotas = provider.quotas()
            except ProviderError as exc:
                info.error, info.unusable = str(exc), isinstance(exc, UnsupportedSite)
            except Exception as exc:  # an SDK's own exception: still a per-site problem, whose
                # text may hold request data: only the server log has it (as in the deployer)
                log.exception("site %s: reading its catalogue failed", site.id)
                info.error = f"unexpected {type(exc).__name__} (see the server log)"
            self._info[key] = info
            return info

    def forget(self, site: Site) -> None:
        """Drop the cached catalogue (after a launch changed the quotas)."""
        self._info.pop((site.id, _fingerprint(site.auth)), None)


def _fingerprint(auth: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(auth), sort_keys=True).encode()).hexdigest()[:16]
