"""Which sites may host a node, best first, and why the others may not.

Hard filters: the sites the template names (placement `cloud_id`, one or several, in order of
preference), an image written for one cloud (`ost://host/...`, `aws://region/...`) only goes to a
site of that cloud, a flavor must fit, and the quota must have room. Among the rest, sites known
to fit come before sites whose catalogue could not be read (they may still work: they are tried
last), then the user's order. Pure: the catalogue is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from orbis.model.infrastructure import Compute
from orbis.placement.fit import explain_no_fit, smallest_fitting
from orbis.placement.sites import Site, SiteInfo

MB = 1024**2
# image URL schemes that belong to one kind of cloud
SCHEME_TYPES = {"ost": {"openstack"}, "aws": {"ec2"}, "egi": {"openstack"},
                "docker": {"local", "kubernetes"}}  # fmt: skip


@dataclass(frozen=True)
class Candidate:
    site: Site
    known_fit: bool  # the catalogue was read and a flavor fits
    flavor: str | None = None


@dataclass(frozen=True)
class Ranking:
    candidates: list[Candidate]
    excluded: dict[str, str]  # site id -> why not

    def explain(self) -> str:
        return "; ".join(f"{site}: {why}" for site, why in self.excluded.items())


def named_sites(compute: Compute) -> list[str]:
    """The site ids a template names for a node (`cloud_id`, comma-separated for several)."""
    return [s.strip() for s in (compute.cloud_id or "").split(",") if s.strip()]


def image_allows(site: Site, image: str | None) -> str | None:
    """None if the site can use the image as written, else why not."""
    if not image or "://" not in image:
        return None  # a name or an OS request: any site may have it
    url = urlparse(image)
    if url.scheme == "local":  # local://SITE[/NAME]: that site of the local back-end only
        if site.own_network and url.netloc.lower() == site.id.lower():
            return None
        return f"image {image} is for local site {url.netloc}"
    wanted = SCHEME_TYPES.get(url.scheme)
    kind = "local" if site.local else site.type.lower()
    if wanted is None or kind in wanted:
        if url.scheme == "ost" and site.host and url.hostname:
            host = urlparse(site.host if "://" in site.host else f"//{site.host}").hostname
            if host and host != url.hostname:
                return f"image {image} is on another OpenStack ({url.hostname})"
        if url.scheme == "egi" and url.netloc and url.netloc != site.id:  # netloc keeps case
            return f"image {image} is for EGI site {url.netloc}"
        return None
    if site.local:
        return None  # the local back-end runs its own node image for any cloud image
    return f"image {image} is for {'/'.join(sorted(wanted))} clouds"


# sites whose image list is the whole choice (EC2 lists only the account's own images, and
# public ones are found by OS at launch)
FULL_IMAGE_LISTS = {"openstack"}


def os_image_allows(info: SiteInfo, compute: Compute) -> str | None:
    """A node that asks for an OS rather than an image needs a site that has one."""
    if compute.image or not compute.os_distribution or not info.images:
        return None
    if info.site.type.lower() not in FULL_IMAGE_LISTS:
        return None
    distro, version = compute.os_distribution.lower(), compute.os_version or ""
    for image in info.images:
        name = image.name.lower()
        if distro in (image.os_distro or name).lower() and version in (image.os_version or name):
            return None
    return f"no {compute.os_distribution} {version} image".rstrip() + " at this site"


def quota_allows(info: SiteInfo, compute: Compute) -> str | None:
    quotas = info.quotas
    checks = (
        ("instances", 1.0, "no instance left"),
        ("cores", float(compute.num_cpus or 1), "not enough cores"),
        ("ram", (compute.mem_size or 0) / MB, "not enough RAM"),
    )
    for key, need, why in checks:
        use = quotas.get(key)
        if use is not None and use.free < need:
            return f"quota: {why} ({use.used:g} of {use.limit:g} used)"
    return None


def rank(compute: Compute, sites: list[Site], infos: dict[str, SiteInfo]) -> Ranking:
    """Order `sites` for `compute`; `infos` holds each site's catalogue by site id."""
    names = named_sites(compute)
    excluded: dict[str, str] = {}
    candidates: list[tuple[tuple[int, int], Candidate]] = []
    if names:
        unknown = [n for n in names if all(s.id != n for s in sites)]
        for n in unknown:
            excluded[n] = "no credentials for this site in the request"
    for site in sites:
        if names and site.id not in names:
            continue
        why = image_allows(site, compute.image)
        info = infos.get(site.id)
        flavor = None
        known = False
        if why is None and info is not None and info.unusable:
            why = info.error
        elif why is None and info is not None and not site.local:
            if info.error:
                why = None  # unknown: keep it, tried last
            elif info.flavors:
                chosen = smallest_fitting(info.flavors, compute)
                if chosen is None:
                    why = explain_no_fit(info.flavors, compute)
                else:
                    flavor, known = chosen.name, True
            else:
                known = True  # a site without flavors (Kubernetes) sizes each node itself
            if info.error is None:
                why = why or os_image_allows(info, compute) or quota_allows(info, compute)
        elif why is None:
            known = True
        if why is not None:
            excluded[site.id] = why
            continue
        order = names.index(site.id) if names else site.preference
        candidates.append(((0 if known else 1, order), Candidate(site, known, flavor)))
    candidates.sort(key=lambda pair: pair[0])
    return Ranking([c for _, c in candidates], excluded)
