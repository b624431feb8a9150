"""EGI Federated Cloud: site discovery through the cloud-info API, EGI image URLs, credentials.

EGI sites are OpenStack clouds, so there is no EGI compute provider: `expand_auth` rewrites
`type = EGI` / `type = EGIIS` auth lines into OpenStack OIDC lines (which the OpenStack provider
consumes), `resolve_image` turns `egi://<site>/<egi_id>?<vo>` into a Glance id, and `rank_sites`
says which sites can host a node (and why the others cannot).

The Check-in access token is passed through as the Keystone "password" and never refreshed or
stored here: callers send a fresh one with each request (tokens live about an hour). It never
appears in logs or error messages.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from orbis.model.infrastructure import Compute
from orbis.placement.fit import (
    explain_no_fit,
    flavor_order,  # IM's flavor order ranks sites too
    smallest_fitting,
)
from orbis.providers.base import (
    Flavor,
    Image,
    NotFound,
    ProviderAuthError,
    ProviderError,
    Transient,
)

log = logging.getLogger(__name__)

DEFAULT_CLOUD_INFO_URL = "https://is.cloud.egi.eu"
ENV_CLOUD_INFO_URL = "ORBIS_EGI_CLOUD_INFO_URL"
IDENTITY_PROVIDER = "egi.eu"
PROTOCOLS = ("openid", "oidc")  # fedcloudclient's order
OIDC_AUTH_VERSION = "3.x_oidc_access_token"

# Distribution names as templates and image names write them → one canonical name
_DISTRO_ALIASES = {
    "alma": "almalinux",
    "rockylinux": "rocky",
    "centos stream": "centos",
    "centos-stream": "centos",
    "redhat": "rhel",
}
_OS_IN_TEXT = re.compile(
    r"\b(ubuntu|debian|centos(?:[ _-]stream)?|almalinux|alma|rocky(?:linux)?|fedora|opensuse"
    r"|alpine|rhel|redhat)\b[^0-9\[\]]{0,3}(\d+(?:\.\d+)*)?",
    re.IGNORECASE,
)


def _distro(name: str) -> str:
    name = name.lower().replace("_", " ")
    return _DISTRO_ALIASES.get(name, name)


def os_of(egi_id: str, name: str = "") -> tuple[str | None, str | None]:
    """(distribution, version) implied by an `egi_id` (`egi_vm_images/ubuntu:24.04`), else by
    the image name (cloud-info has no OS fields)."""
    for text in (egi_id.rsplit("/", 1)[-1].replace(":", " "), name):
        if match := _OS_IN_TEXT.search(text):
            return _distro(match[1]), match[2]
    return None, None


def keystone_base(url: str) -> str:
    """The Keystone base URL of a cloud-info site `url`: trailing `/` off, last path part
    (`/v3`) dropped."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    path = path.rsplit("/", 1)[0] if path else ""
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def parse_egi_url(url: str) -> tuple[str, str, str | None]:
    """`egi://<site>/<egi_id>?<vo>` → (site, egi_id, vo or None)."""
    parts = urlsplit(url)
    egi_id = parts.path.lstrip("/")
    if parts.scheme != "egi" or not parts.netloc or not egi_id:
        raise NotFound(f"{url!r} is not an EGI image URL (egi://<site>/<image>?<vo>)")
    return parts.netloc, egi_id, parts.query or None


@dataclass(frozen=True)
class Project:
    id: str
    name: str


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    url: str  # Keystone URL, with /v3
    hostname: str
    state: str = ""
    projects: tuple[Project, ...] | None = None  # None: cloud-info was not asked

    @property
    def keystone(self) -> str:
        return keystone_base(self.url)

    def project(self, vo: str) -> Project | None:
        return next((p for p in self.projects or () if p.name == vo), None)


@dataclass(frozen=True)
class EgiImage:
    """One entry of `/site/{name}/{vo}/images`."""

    site: str
    vo: str
    egi_id: str
    id: str  # may be "<appdb id>#<glance id>"
    name: str
    version: str
    mpuri: str = ""

    @property
    def glance_id(self) -> str:
        return self.id.rsplit("#", 1)[-1]

    @property
    def url(self) -> str:
        return f"egi://{self.site}/{self.egi_id}?{self.vo}"

    def as_image(self) -> Image:
        distro, version = os_of(self.egi_id, self.name)
        return Image(
            id=self.glance_id, name=self.name, url=self.url, os_distro=distro, os_version=version
        )


def _newest(images: Iterable[EgiImage]) -> EgiImage | None:
    # IM's rule: the highest `version` as a plain string
    return max(images, key=lambda i: i.version, default=None)


def _projects(entries: Any, where: str) -> tuple[Project, ...]:
    """The well-formed project entries (id and name); the others are skipped with a warning."""
    projects = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and entry.get("id") and entry.get("name"):
            projects.append(Project(str(entry["id"]), str(entry["name"])))
        else:
            log.warning("EGI cloud-info: %s: project entry without id or name skipped", where)
    return tuple(projects)


def _site(data: Any) -> Site | None:
    """A cloud-info site entry, None (with a warning) when it has no name."""
    if not isinstance(data, Mapping) or not data.get("name"):
        log.warning("EGI cloud-info: site entry without a name skipped")
        return None
    projects = data.get("projects")
    url = str(data.get("url") or "")
    return Site(
        id=str(data.get("id", "")),
        name=str(data["name"]),
        url=url,
        hostname=data.get("hostname") or (urlsplit(url).hostname or ""),
        state=data.get("state") or "",
        projects=None if projects is None else _projects(projects, f"site {data['name']}"),
    )


@contextmanager
def _http_errors(what: str) -> Iterator[None]:
    """httpx failures → typed errors. Messages name the call, never headers (tokens)."""
    try:
        yield
    except httpx.TimeoutException as err:
        raise Transient(f"{what}: timed out") from err
    except httpx.TransportError as err:
        raise Transient(f"{what}: cannot connect ({type(err).__name__})") from err


def _status_error(what: str, response: httpx.Response) -> ProviderError:
    code = response.status_code
    if code in (401, 403):
        return ProviderAuthError(f"{what}: credentials refused ({code})")
    if code == 404:
        return NotFound(f"{what}: not found")
    if code == 429 or code >= 500:
        return Transient(f"{what}: service busy or failing ({code})")
    return ProviderError(f"{what}: HTTP {code}")


class CloudInfo:
    """A client of the EGI cloud-info API. Answers are kept `ttl` seconds (the catalogue changes
    slowly, and placement asks for the same sites many times); `refresh()` forgets them."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 10.0,
        ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        url = base_url or os.environ.get(ENV_CLOUD_INFO_URL) or DEFAULT_CLOUD_INFO_URL
        self.base_url = url.rstrip("/")
        self.ttl = ttl
        self.timeout = timeout
        self._clock = clock
        self._http = httpx.Client(timeout=timeout, headers={"Accept": "application/json"})
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CloudInfo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refresh(self) -> None:
        with self._lock:
            self._cache.clear()

    def _cached(self, key: tuple[Any, ...], load: Callable[[], Any]) -> Any:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        value = load()
        with self._lock:
            self._cache[key] = (now + self.ttl, value)
        return value

    def _get(self, path: str, **params: str) -> Any:
        def load() -> Any:
            log.debug("EGI cloud-info GET %s %s", path, params)
            what = f"EGI cloud-info {path}"
            with _http_errors(what):
                response = self._http.get(self.base_url + path, params=params)
            if response.status_code != 200:
                raise _status_error(what, response)
            try:
                return response.json()
            except ValueError as err:
                raise Transient(f"{what}: answered something that is not JSON") from err

        return self._cached(("GET", path, tuple(sorted(params.items()))), load)

    # -- the catalogue -----------------------------------------------------------------------
    def vos(self) -> list[str]:
        return list(self._get("/vos/"))

    def sites(self, vo: str | None = None) -> list[Site]:
        """Sites (supporting `vo`, when given), with their projects."""
        params = {"include_projects": "true"} | ({"vo_name": vo} if vo else {})
        return [site for s in self._get("/sites/", **params) if (site := _site(s))]

    def site(self, name: str) -> Site:
        try:
            site = _site(self._get(f"/site/{quote(name, safe='')}/"))
        except NotFound:
            raise NotFound(f"EGI site {name!r} is not in the cloud-info catalogue") from None
        if site is None:
            raise ProviderError(f"EGI cloud-info: the entry of site {name!r} has no name")
        return site

    def projects(self, site: str) -> list[Project]:
        return list(_projects(self._get(f"/site/{quote(site, safe='')}/projects"), site))

    def site_images(self, site: str, vo: str) -> list[EgiImage]:
        """Every version of every image `vo` has at `site`."""
        path = f"/site/{quote(site, safe='')}/{quote(vo, safe='')}/images"
        try:
            data = self._get(path)
        except NotFound:
            return []  # the site does not support the VO
        entries = data if isinstance(data, list) else []
        if bad := [i for i in entries if not isinstance(i, Mapping) or not i.get("id")]:
            log.warning("EGI cloud-info: %s: %d image entries without id skipped", path, len(bad))
        return [
            EgiImage(
                site=site,
                vo=i.get("vo") or vo,
                egi_id=i.get("egi_id") or "",
                id=str(i["id"]),
                name=i.get("name") or "",
                version=str(i.get("version") or ""),
                mpuri=i.get("mpuri") or "",
            )
            for i in entries
            if i not in bad
        ]

    def images(self, vo: str, site: str | None = None) -> list[Image]:
        """The VO's images (newest version of each), site by site."""
        names = [site] if site else sorted(s.name for s in self.sites(vo))
        out = []
        for name in names:
            by_id: dict[str, list[EgiImage]] = {}
            for image in self.site_images(name, vo):
                by_id.setdefault(image.egi_id, []).append(image)
            out += [newest.as_image() for group in by_id.values() if (newest := _newest(group))]
        return out

    # -- egi:// image URLs ---------------------------------------------------------------------
    def resolve_image(
        self, url: str, *, vo: str | None = None, keystone_host: str | None = None
    ) -> str:
        """The Glance id of `egi://<site>/<egi_id>?<vo>`. The VO is the URL's, else `vo` (the
        credential's). With `keystone_host` (the credential's), the image's site must be the
        site at that host: an image id is only valid in its own site's Glance."""
        return self.find_image(url, vo=vo, keystone_host=keystone_host).glance_id

    def find_image(
        self, url: str, *, vo: str | None = None, keystone_host: str | None = None
    ) -> EgiImage:
        site_name, egi_id, url_vo = parse_egi_url(url)
        vo = url_vo or vo
        if not vo:
            raise NotFound(f"{url}: no VO in the URL (?<vo>) nor in the credential")
        self.site(site_name)  # NotFound for an unknown site
        if keystone_host:
            host = (
                urlsplit(keystone_host).hostname
                if "//" in keystone_host
                else keystone_host.split(":")[0]
            ) or keystone_host
            if not any(
                s.name == site_name and s.hostname.split(":")[0].lower() == host.lower()
                for s in self.sites()
            ):
                raise NotFound(f"{url}: image of site {site_name}, but this cloud is {host}")
        newest = _newest(i for i in self.site_images(site_name, vo) if i.egi_id == egi_id)
        if newest is None:
            raise NotFound(f"{url}: site {site_name} has no image {egi_id} for VO {vo}")
        return newest

    # -- VO → project ----------------------------------------------------------------------------
    def project_id(self, site: Site, vo: str, token: str) -> tuple[str | None, str | None]:
        """(project id for `vo` at `site`, warning). cloud-info first; else, as fedcloudclient
        does, the site's Keystone: unscoped federation token, then the user's projects."""
        try:
            projects = self.projects(site.name) if site.projects is None else site.projects
        except ProviderError as err:  # as when no project is found: the VO name, with a warning
            return None, f"EGI site {site.name}: cannot list its projects for VO {vo} ({err})"
        project = next((p for p in projects if p.name == vo), None)
        if project:
            return project.id, None
        try:
            found = self._cached(
                ("keystone", site.keystone, vo),
                lambda: keystone_project(site.keystone, vo, token, timeout=self.timeout),
            )
            return found, None
        except ProviderError as err:
            return None, f"EGI site {site.name}: no project found for VO {vo} ({err})"


@functools.cache
def _shared(base_url: str) -> CloudInfo:
    return CloudInfo(base_url)


def cloud_info() -> CloudInfo:
    """The process-wide client (so its cache is shared) for the configured cloud-info URL."""
    return _shared(os.environ.get(ENV_CLOUD_INFO_URL) or DEFAULT_CLOUD_INFO_URL)


def keystone_project(base: str, vo: str, token: str, *, timeout: float = 10.0) -> str:
    """The id of the project named like `vo` (`^(VO:|vo_)*<vo>$`) among those the token's owner
    may use at the Keystone at `base`."""
    what = f"Keystone at {urlsplit(base).netloc}"
    with httpx.Client(timeout=timeout) as http:
        unscoped = None
        for protocol in PROTOCOLS:
            auth = (
                f"{base}/v3/OS-FEDERATION/identity_providers/{IDENTITY_PROVIDER}"
                f"/protocols/{protocol}/auth"
            )
            with _http_errors(what):
                response = http.post(auth, headers={"Authorization": f"Bearer {token}"})
            if response.status_code in (200, 201) and response.headers.get("X-Subject-Token"):
                unscoped = response.headers["X-Subject-Token"]
                break
            if response.status_code != 404:  # 404: the site does not use this protocol
                raise _status_error(what, response)
        if unscoped is None:
            raise NotFound(
                f"{what}: no federation protocol {'/'.join(PROTOCOLS)} for {IDENTITY_PROVIDER}"
            )
        with _http_errors(what):
            response = http.get(f"{base}/v3/auth/projects", headers={"X-Auth-Token": unscoped})
        if response.status_code != 200:
            raise _status_error(what, response)
        pattern = re.compile(rf"^(VO:|vo_)*{re.escape(vo)}$")
        try:  # a proxy's error page must not escape as a JSON or key error
            projects = response.json().get("projects", [])
            for project in projects:
                if project.get("enabled", True) and pattern.match(project.get("name", "")):
                    return str(project["id"])
        except (ValueError, AttributeError, KeyError, TypeError):
            raise ProviderError(f"{what}: the project list is not JSON as Keystone sends it"
                                ) from None  # fmt: skip
    raise NotFound(f"{what}: none of your projects belongs to VO {vo}")


def _openstack_line(
    info: CloudInfo, site: Site, line: Mapping[str, str], id_: str, warnings: list[str]
) -> dict[str, str]:
    vo, token = line["vo"], line["token"]
    project, warning = info.project_id(site, vo, token)
    if warning:
        warnings.append(warning)
    out = {
        "id": id_,
        "type": "OpenStack",
        "host": site.keystone,
        "username": IDENTITY_PROVIDER,
        "tenant": "openid",
        "password": token,
        "auth_version": OIDC_AUTH_VERSION,
        "domain": project or vo,
        "vo": vo,
    }
    if line.get("api_version"):
        out["api_version"] = line["api_version"]
    return out


def expand_auth(
    lines: Iterable[Mapping[str, str]], info: CloudInfo | None = None
) -> tuple[list[dict[str, str]], list[str]]:
    """Rewrite EGI auth lines into OpenStack OIDC lines, as IM does; other lines pass unchanged.

    `type = EGI; host = <site>; vo; token` becomes one line for that site (dropped, with a
    warning, when the site is unknown); `type = EGIIS; vo; token` one line per site supporting
    the VO, `id = <site name>`. Returns (lines, warnings for the caller to show)."""
    info = info or cloud_info()
    out: list[dict[str, str]] = []
    warnings: list[str] = []
    for line in lines:
        kind = (line.get("type") or "").upper()
        if kind not in ("EGI", "EGIIS"):
            out.append(dict(line))
            continue
        label = line.get("id") or kind
        needed = ("host", "vo", "token") if kind == "EGI" else ("vo", "token")
        if missing := [k for k in needed if not line.get(k)]:
            warnings.append(f"auth line {label}: dropped, {kind} needs {', '.join(missing)}")
            continue
        if kind == "EGI":
            try:
                site = info.site(line["host"])
            except NotFound as err:
                warnings.append(f"auth line {label}: dropped, {err}")
                log.warning("auth line %s dropped: unknown EGI site %s", label, line["host"])
                continue
            out.append(_openstack_line(info, site, line, line.get("id") or site.name, warnings))
        else:
            sites = info.sites(line["vo"])
            if not sites:
                warnings.append(f"auth line {label}: no EGI site supports VO {line['vo']}")
            out += [_openstack_line(info, s, line, s.name, warnings) for s in sites]
    return out, warnings


# -- placement -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SiteChoice:
    site: Site
    image: Image
    flavor: Flavor


@dataclass
class SiteRanking:
    choices: list[SiteChoice] = field(default_factory=list)  # best first
    rejected: dict[str, str] = field(default_factory=dict)  # site name → why not

    @property
    def best(self) -> SiteChoice | None:
        return self.choices[0] if self.choices else None

    def explain(self) -> str:
        return "; ".join(f"{site}: {why}" for site, why in sorted(self.rejected.items()))


def _matches_os(image: Image, compute: Compute) -> bool:
    if compute.os_distribution and image.os_distro != _distro(compute.os_distribution):
        return False
    want = str(compute.os_version or "")
    have = image.os_version or ""
    return not want or have == want or have.startswith(want + ".")


def _pick_image(info: CloudInfo, site: Site, vo: str, compute: Compute) -> Image | str:
    """The image for `compute` at `site`, or why there is none."""
    if compute.image and compute.image.startswith("egi://"):
        url_site = parse_egi_url(compute.image)[0]
        if url_site != site.name:
            return f"the template asks for an image at {url_site}"
        try:
            return info.find_image(compute.image, vo=vo).as_image()
        except NotFound as err:
            return str(err)
    if compute.image:
        host = urlsplit(compute.image).hostname or ""
        if host.lower() != site.hostname.split(":")[0].lower():
            return f"the template's image {compute.image} is not at this site"
        image_id = urlsplit(compute.image).path.lstrip("/")
        return Image(id=image_id, name=image_id, url=compute.image)
    if not compute.os_distribution:
        return "the node names neither an image nor an OS distribution"
    matching = [i for i in info.site_images(site.name, vo) if _matches_os(i.as_image(), compute)]
    if not matching:
        wanted = " ".join(filter(None, (compute.os_distribution, str(compute.os_version or ""))))
        return f"no {wanted} image for VO {vo}"
    # the newest OS release, then the newest build of it
    return max(matching, key=lambda i: (_release(i.as_image()), i.version)).as_image()


def _release(image: Image) -> tuple[int, ...]:
    return tuple(int(p) for p in (image.os_version or "").split(".") if p.isdigit())


def rank_sites(
    info: CloudInfo, vo: str, compute: Compute, flavors_of: Callable[[str], list[Flavor]]
) -> SiteRanking:
    """The sites supporting `vo` that have an image and a fitting flavor for `compute`, best
    (cheapest, then smallest flavor, as IM orders flavors) first; the others with a reason."""
    ranking = SiteRanking()
    for site in info.sites(vo):
        image = _pick_image(info, site, vo, compute)
        if isinstance(image, str):
            ranking.rejected[site.name] = image
            continue
        try:
            flavors = flavors_of(site.name)
        except ProviderError as err:
            ranking.rejected[site.name] = f"cannot list flavors: {err}"
            continue
        flavor = smallest_fitting(flavors, compute)
        if flavor is None:
            ranking.rejected[site.name] = explain_no_fit(flavors, compute)
            continue
        ranking.choices.append(SiteChoice(site, image, flavor))
    ranking.choices.sort(key=lambda c: (flavor_order(c.flavor), c.site.name))
    return ranking
