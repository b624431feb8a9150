"""The catalogue: cards, the add-on picker, the form, the plan and the deploy; and "your own
template" (a pasted TOSCA document, the Dashboard's `tosca.yml` card)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from orbis.api import plan_view
from orbis.lang.errors import TemplateError
from orbis.model.infrastructure import Template
from orbis.service import InvalidRequest, NotFoundError, ServiceError
from orbis.web import credentials
from orbis.web.catalogue import ICON_TYPES, Catalogue
from orbis.web.compose_form import (
    Choice,
    ChoiceError,
    build,
    choose,
    form_tabs,
    infra_name_of,
    problems_of,
)
from orbis.web.forms import MAX_VALUE_CHARS, Tab, Viewer, fields_of, prefill, read_values
from orbis.web.image_picker import check_image, sites_with_images, with_image
from orbis.web.pages import (
    WebRoute,
    error_page,
    form_of,
    identity,
    page,
    redirect,
    service,
    session,
    unseal_value,
    user_session,
)

router = APIRouter(route_class=WebRoute, include_in_schema=False)
MAX_TEMPLATE_CHARS = 512 * 1024


def containers_only(choice: Choice) -> bool:
    """The Dashboard's `tag: Container`: the template deploys on Kubernetes credentials only."""
    return choice.base.tag == "Container"


def catalogue(request: Request) -> Catalogue:
    found: Catalogue = request.app.state.web_catalogue
    return found


@router.get("/ui/")
async def cards(request: Request, q: str = "") -> Response:
    """The catalogue's cards (filtered by `q` without JavaScript; the page filters as you type)."""
    vos = user_session(request).vos
    entries = [e for e in await run_in_threadpool(catalogue(request).cards) if e.offered_to(vos)]
    words = q.lower().split()
    if words:
        entries = [e for e in entries
                   if all(w in f"{e.display_name} {e.description} {e.tag}".lower() for w in words)]
    icons = {e.id for e in entries if catalogue(request).icon_file(e) is not None}
    answer = page(request, "catalogue.html", title="Catalogue", cards=entries, q=q, icons=icons,
                  all_entries={e.id: e for e in catalogue(request).entries()
                               if e.offered_to(vos)})  # fmt: skip
    if any(e.icon_url for e in entries):  # icons given as URLs: images (only) from anywhere
        policy = answer.headers["Content-Security-Policy"]
        answer.headers["Content-Security-Policy"] = policy.replace(
            "img-src 'self' data:", "img-src 'self' data: https: http:")
    return answer


@router.get("/ui/icons/{template_id:path}")
async def icon(request: Request, template_id: str) -> Response:
    """A card's icon from the catalogue folder (never a file outside it)."""
    user_session(request)
    entry = catalogue(request).get(template_id)
    path = catalogue(request).icon_file(entry) if entry is not None else None
    if path is None:
        raise NotFoundError("No icon")
    answer = Response(path.read_bytes(), media_type=ICON_TYPES[path.suffix.lower()])
    # an SVG opened on its own must not run script in this site's origin
    answer.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    answer.headers["X-Content-Type-Options"] = "nosniff"
    answer.headers["Cache-Control"] = "max-age=3600"
    return answer


def _choice(request: Request, template: str, childs: str | None) -> Choice:
    try:
        return choose(catalogue(request), template, childs, session(request).vos)
    except ChoiceError as exc:
        raise InvalidRequest(str(exc)) from None


@router.get("/ui/configure")
async def configure(request: Request, template: str, childs: str | None = None,
                    picked: str = "") -> Response:  # fmt: skip
    """The add-on picker (a base with add-ons, none chosen yet), else the form."""
    user_session(request)
    if picked and childs is None:
        childs = ""  # the picker was submitted with no add-on ticked
    params = request.query_params.getlist("childs")
    if len(params) > 1:
        childs = ",".join(params)
    choice = _choice(request, template, childs)
    entry = catalogue(request).get(template)
    if childs is None and choice.base.childs and entry is not None and not entry.link_parent:
        vos = session(request).vos
        offered = [a for a in (catalogue(request).get(c) for c in choice.base.childs)
                   if a and a.offered_to(vos)]
        return page(request, "addons.html", title=choice.base.display_name, choice=choice,
                    offered=offered)  # fmt: skip
    return await _form(request, choice, {}, [], params=request.query_params)


async def _form(request: Request, choice: Choice, errors: dict[str, str],
                problems: list[dict[str, Any]], tabs: list[Tab] | None = None,
                status: int = 200, form: Any = None, params: Any = None) -> Response:  # fmt: skip
    if tabs is None:
        try:
            tabs = await run_in_threadpool(form_tabs, choice)
        except TemplateError as exc:
            problems = [*problems, *problems_of(exc)]
            tabs = []
    if params is not None:  # a link that fills fields (`?input=value`)
        prefill(tabs, params)
    creds = [c for c in await credentials.listing(request)
             if not containers_only(choice) or c["type"] == "Kubernetes"]  # fmt: skip
    credential = str(form.get("credential") or "") if form is not None else ""
    return page(request, "configure.html", status, title=choice.title, choice=choice, tabs=tabs,
                errors=errors, problems=problems, credentials=creds,
                infra_name=str(form.get("infra_name") or "") if form is not None else "",
                credential=credential,
                image=str(form.get("image") or "") if form is not None else "",
                image_sites=await sites_with_images(request, credential))  # fmt: skip


async def _posted(request: Request) -> tuple[Any, Choice, list[Tab], dict[str, Any],
                                             dict[str, str]]:  # fmt: skip
    form = await form_of(request)
    choice = _choice(request, str(form.get("template") or ""), str(form.get("childs") or ""))
    tabs = await run_in_threadpool(form_tabs, choice)
    current = session(request)
    uploads = {}
    for f in fields_of(tabs):
        item = form.get(f.name)
        if f.kind == "file" and isinstance(item, UploadFile):
            uploads[f.name] = await item.read(MAX_VALUE_CHARS + 1)  # larger: refused
    viewer = Viewer(current.name, current.vos, current.line.get("token", ""), uploads,
                    lambda name, sealed: unseal_value(request, name, sealed))  # fmt: skip
    values, errors = read_values(tabs, form, viewer)
    _name, problem = infra_name_of(form)
    if problem:
        errors["infra_name"] = problem
    cred = str(form.get("credential") or "")
    problem = await check_image(request, cred, str(form.get("image") or ""))
    if problem:
        errors["image"] = problem
    if containers_only(choice) and any(line.get("type") != "Kubernetes"
                                       for line in await credentials.lines(request, cred)):
        errors["credential"] = "this template runs containers: choose Kubernetes credentials"
    return form, choice, tabs, values, errors


@router.post("/ui/plan")
async def plan(request: Request) -> Response:
    """What a deploy of the filled form would create (nodes, sizes, sites), with a Deploy button;
    the form again with each error next to its field when something is wrong."""
    user_session(request)
    form, choice, tabs, values, errors = await _posted(request)
    if errors:
        return await _form(request, choice, errors, [], tabs, status=400, form=form)
    infra_name = infra_name_of(form)[0]
    try:
        template, text, name = await run_in_threadpool(build, choice, values, infra_name)
    except TemplateError as exc:
        return await _form(request, choice, {}, problems_of(exc), tabs, status=400, form=form)
    image = str(form.get("image") or "")
    if image:  # the plan's sites follow the image (an image URL names its site)
        template, _ = await service(request).parse_async(with_image(text, image), name)
    cred = str(form.get("credential") or "")
    who = await identity(request, await credentials.lines(request, cred))
    summary = await _plan_summary(request, who, template)
    return page(request, "plan.html", title=f"Plan: {choice.title}", choice=choice,
                fields=fields_of(tabs), plan=summary, credential=cred, infra_name=infra_name,
                image=image, action="/ui/deploy")  # fmt: skip


async def _plan_summary(request: Request, who: Any, template: Template) -> dict[str, Any]:
    svc = service(request)
    svc.check_quota(who.key, sum(template.counts().values()))  # as the deploy would
    result = plan_view.plan(template)
    sites: dict[str, list[str]] = {}
    try:
        placement = await svc.placement_preview(who, template)
        for node in placement.get("nodes", []):
            sites[node["node"]] = [
                f"{s['id']} ({s['type']}{', ' + s['flavor'] if s.get('flavor') else ''})"
                for s in node.get("sites", [])
            ] + [f"not {site}: {why}" for site, why in (node.get("excluded") or {}).items()]
        result["warnings"] = placement.get("warnings", [])
    except (ServiceError, ValueError, OSError) as exc:
        result["warnings"] = [f"where the nodes would go is not known: {exc}"]
    result["sites"] = sites
    return result


@router.post("/ui/deploy")
async def deploy(request: Request) -> Response:
    """Create the infrastructure; its page follows the deployment live."""
    user_session(request)
    form, choice, tabs, values, errors = await _posted(request)
    if errors:
        return await _form(request, choice, errors, [], tabs, status=400, form=form)
    try:
        _template, text, name = await run_in_threadpool(build, choice, values,
                                                        infra_name_of(form)[0])  # fmt: skip
    except TemplateError as exc:
        return await _form(request, choice, {}, problems_of(exc), tabs, status=400, form=form)
    if form.get("image"):
        text = with_image(text, str(form.get("image")))
    cloud = await credentials.lines(request, str(form.get("credential") or ""))
    who = await identity(request, cloud)
    infra_id = await service(request).create(who, text, name)
    return redirect(request, f"/ui/infrastructures/{infra_id}")


@router.get("/ui/custom")
async def custom_form(request: Request) -> Response:
    user_session(request)
    return page(request, "custom.html", title="Your own template", text="", problems=[],
                credentials=await credentials.listing(request))  # fmt: skip


@router.post("/ui/custom")
async def custom(request: Request) -> Response:
    """Plan (or, with `deploy`, create) a pasted TOSCA/RADL template; errors name their line."""
    user_session(request)
    form = await form_of(request)
    text = str(form.get("template") or "")
    cred = str(form.get("credential") or "")
    if len(text) > MAX_TEMPLATE_CHARS:
        return error_page(request, 413, f"The template is longer than {MAX_TEMPLATE_CHARS} "
                          "characters (the dashboard's limit).")  # fmt: skip
    svc = service(request)
    who = await identity(request, await credentials.lines(request, cred))
    try:
        template, _ = await svc.parse_async(text, "template.yaml")
    except InvalidRequest as exc:
        problems = [{"where": "", "message": line, "hint": None}
                    for line in str(exc).splitlines() if line.strip()]
        return page(request, "custom.html", 400, title="Your own template", text=text,
                    problems=problems, credentials=await credentials.listing(request))  # fmt: skip
    if form.get("deploy"):
        infra_id = await svc.create(who, text, "template.yaml")
        return redirect(request, f"/ui/infrastructures/{infra_id}")
    summary = await _plan_summary(request, who, template)
    return page(request, "plan.html", title="Plan: your own template", choice=None, fields=[],
                plan=summary, credential=cred, action="/ui/custom", text=text)  # fmt: skip
