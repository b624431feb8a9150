"""The Dashboard's image picker: the images of the sites a credential reaches (the site
catalogue, as `orbis sites` shows it: cached 10 minutes), offered in the form's "Cloud provider"
tab; the chosen one is checked on the server against that list and written into every compute
node whose template names no image (catalogue-format.md §2.4: "the chosen image into every
indigo.Compute `capabilities.os.properties.image` still empty")."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import Response

from orbis.service import ServiceError
from orbis.web import credentials
from orbis.web.pages import WebRoute, identity, page, service, user_session

log = logging.getLogger(__name__)
router = APIRouter(route_class=WebRoute, include_in_schema=False)
LIST_SECONDS = 30.0


async def sites_with_images(request: Request, credential_id: str) -> list[dict[str, Any]]:
    """The sites a deployment with this credential may use (its own, then the server's), each
    {"id", "error", "images": [{"url", "name"}]}; a site that cannot be read says why."""
    who = await identity(request, await credentials.lines(request, credential_id))
    try:
        sites = await asyncio.wait_for(service(request).site_catalogue(who), LIST_SECONDS)
    except TimeoutError:
        return [{"id": "", "error": f"the sites did not answer within {LIST_SECONDS:g} s",
                 "images": []}]  # fmt: skip
    except ServiceError as exc:
        return [{"id": "", "error": str(exc), "images": []}]
    except Exception:  # a back-end that cannot list: the form must still show
        log.warning("dashboard: listing the images of the sites failed", exc_info=True)
        return [{"id": "", "error": "the sites could not be read (the server's log says why)",
                 "images": []}]  # fmt: skip
    return [{"id": s["id"], "error": s.get("error") or "",
             "images": [{"url": i["url"], "name": i["name"] or i["id"]} for i in s["images"]
                        if i.get("url")]}
            for s in sites]  # fmt: skip


@router.get("/ui/images")
async def images_fragment(request: Request, credential: str = "", image: str = "") -> Response:
    """The picker's options for one credential (the form's script swaps them in)."""
    user_session(request)
    sites = await sites_with_images(request, credential)
    return page(request, "fragments/images.html", sites=sites, image=image)


async def check_image(request: Request, credential_id: str, url: str) -> str:
    """"" when `url` is empty or an image of the credential's sites, else what is wrong."""
    if not url:
        return ""
    sites = await sites_with_images(request, credential_id)
    if any(i["url"] == url for s in sites for i in s["images"]):
        return ""
    return "not an image of the sites these credentials reach: choose one from the list"


def with_image(text: str, url: str) -> str:
    """The template `text` with `url` as the image of every compute node that names none."""
    doc = yaml.safe_load(text)
    topology = doc.get("topology_template") if isinstance(doc, dict) else None
    nodes = topology.get("node_templates") if isinstance(topology, dict) else None
    for node in (nodes or {}).values():
        if not isinstance(node, dict) or not str(node.get("type", "")).endswith("Compute"):
            continue
        caps = node.setdefault("capabilities", {})
        os_cap = caps.setdefault("os", {}) if isinstance(caps, dict) else None
        props = os_cap.setdefault("properties", {}) if isinstance(os_cap, dict) else None
        if isinstance(props, dict) and not props.get("image"):
            props["image"] = url
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
