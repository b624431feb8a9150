"""Per-user cloud credentials: stored sealed (Fernet, as the API stores an infrastructure's
cloud lines), shown back only as a hint with every secret masked, tested against the cloud, and
sent as IM auth lines when the user plans or deploys with one."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orbis.secrets import Sealer
from orbis.service import InvalidRequest, NotFoundError, ServiceError
from orbis.store import credentials as rows
from orbis.web.pages import WebRoute, form_of, identity, page, redirect, service, user_session

router = APIRouter(route_class=WebRoute, include_in_schema=False)
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SECRETS = ("password", "token")
MAX_VALUE = 8192
TEST_SECONDS = 30.0


@dataclass(frozen=True)
class Kind:
    """A cloud type: the IM auth line's `type`, and its fields (required first)."""

    type: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


KINDS = {
    "OpenStack": Kind("OpenStack", ("host", "username", "password", "tenant"),
                      ("domain", "auth_version", "region")),
    "EGI": Kind("EGI", ("vo", "token"), ("host",)),
    "EC2": Kind("EC2", ("username", "password"), ("region",)),
    "Kubernetes": Kind("Kubernetes", ("host", "token"), ("namespace",)),
}
FIELDS = ("host", "username", "password", "tenant", "domain", "auth_version", "region", "vo",
          "token", "namespace")  # fmt: skip
LABELS = {"host": "Endpoint (URL)", "username": "User name / access key",
          "password": "Password / secret key", "tenant": "Project (tenant)",
          "domain": "Domain", "auth_version": "Keystone auth version", "region": "Region",
          "vo": "Virtual organisation", "token": "Token", "namespace": "Namespace"}  # fmt: skip


def _sealer(request: Request) -> Sealer:
    found: Sealer = request.app.state.sealer
    return found


def mask(value: str) -> str:
    """A secret as the page may show it: never in full (its last 2 characters when long)."""
    return "••••" + (value[-2:] if len(value) >= 12 else "")


def hint_of(line: dict[str, str]) -> str:
    return "; ".join(f"{k} = {mask(v) if k in SECRETS else v}" for k, v in line.items()
                     if k not in ("id", "type"))  # fmt: skip


async def _owner(request: Request) -> str:
    return (await identity(request)).key


async def listing(request: Request) -> list[dict[str, Any]]:
    """The user's credentials for a select: id, label and hint (no secret)."""
    owner = await _owner(request)
    return [{"id": str(r.id), "label": f"{r.label} ({r.type})", "hint": r.hint, "type": r.type}
            for r in rows.list_for(service(request).store, owner)]  # fmt: skip


async def lines(request: Request, credential_id: str) -> list[dict[str, str]]:
    """The IM auth line of one of the user's credentials ([] for none: the server's back-end);
    NotFoundError for an id that is not theirs."""
    if not credential_id:
        return []
    if not credential_id.isdigit() or len(credential_id) > 9:
        raise NotFoundError("No such credentials")
    row = rows.get_for(service(request).store, await _owner(request), int(credential_id))
    if row is None:
        raise NotFoundError("No such credentials")
    line = _sealer(request).open(row.sealed)
    return [dict(line)] if isinstance(line, dict) else []


def _render(request: Request, status: int = 200, **extra: Any) -> Response:
    return page(request, "credentials.html", status, title="Credentials", kinds=KINDS,
                fields=FIELDS, labels=LABELS, **extra)  # fmt: skip


@router.get("/ui/credentials")
async def credentials_page(request: Request, edit: str = "") -> Response:
    user_session(request)
    owner = await _owner(request)
    store = service(request).store
    editing: dict[str, Any] | None = None
    if edit.isdigit() and len(edit) <= 9:
        row = rows.get_for(store, owner, int(edit))
        if row is None:
            raise NotFoundError("No such credentials")
        line = _sealer(request).open(row.sealed)
        values = {k: v for k, v in (line if isinstance(line, dict) else {}).items()
                  if k not in SECRETS}  # secrets are never sent back: empty keeps them
        editing = {"id": row.id, "label": row.label, "type": row.type, "values": values}
    return _render(request, items=rows.list_for(store, owner), editing=editing)


def _line_from(form: Any, kind: Kind, label: str, old: dict[str, str]) -> dict[str, str]:
    line = {"id": label, "type": kind.type}
    for name in (*kind.required, *kind.optional):
        value = str(form.get(name) or "").strip()
        if len(value) > MAX_VALUE or any(c in value for c in "\n\r\x00"):
            raise InvalidRequest(f"{LABELS[name]}: at most {MAX_VALUE} characters, one line")
        if not value and name in SECRETS and old.get(name):
            value = old[name]  # left empty while editing: keep the stored secret
        if value:
            line[name] = value
        elif name in kind.required:
            raise InvalidRequest(f"{LABELS[name]} is required for {kind.type}")
    return line


@router.post("/ui/credentials")
async def save(request: Request) -> Response:
    """Add credentials, or replace them (`credential_id`); secrets left empty are kept."""
    user_session(request)
    form = await form_of(request)
    owner = await _owner(request)
    store = service(request).store
    label = str(form.get("label") or "").strip()
    kind = KINDS.get(str(form.get("type") or ""))
    if kind is None:
        raise InvalidRequest(f"Choose a cloud type: {', '.join(KINDS)}")
    if not LABEL.fullmatch(label):
        raise InvalidRequest("The name is 1-64 letters, digits, '.', '_' or '-' (it becomes the "
                             "auth line's id, the site name in plans)")  # fmt: skip
    raw_id = str(form.get("credential_id") or "")
    old: dict[str, str] = {}
    credential_id = None
    if raw_id:
        row = rows.get_for(store, owner, int(raw_id)) if raw_id.isdigit() else None
        if row is None:
            raise NotFoundError("No such credentials")
        credential_id = row.id
        opened = _sealer(request).open(row.sealed)
        old = dict(opened) if isinstance(opened, dict) and row.type == kind.type else {}
    line = _line_from(form, kind, label, old)
    try:
        rows.save(store, owner, label, kind.type, _sealer(request).seal(line), hint_of(line),
                  credential_id)  # fmt: skip
    except rows.CredentialConflict as exc:
        raise InvalidRequest(str(exc)) from None
    return redirect(request, "/ui/credentials")


@router.post("/ui/credentials/{credential_id}/delete")
async def delete(request: Request, credential_id: str) -> Response:
    user_session(request)
    await form_of(request)
    owner = await _owner(request)
    if not credential_id.isdigit() or not rows.remove(service(request).store, owner,
                                                      int(credential_id)):  # fmt: skip
        raise NotFoundError("No such credentials")
    return redirect(request, "/ui/credentials")


@router.post("/ui/credentials/{credential_id}/test")
async def test(request: Request, credential_id: str) -> Response:
    """Read the cloud's catalogue (images, flavors, quotas) with these credentials: either what
    it offers, or why it could not be read; on the page, never a stack trace."""
    user_session(request)
    await form_of(request)
    cloud = await lines(request, credential_id)
    who = await identity(request, cloud)
    svc = service(request)
    label = cloud[0].get("id", "") if cloud else ""
    try:
        sites = await asyncio.wait_for(svc.site_catalogue(who, refresh=True), TEST_SECONDS)
    except TimeoutError:
        result = {"ok": False, "message": f"The cloud did not answer within {TEST_SECONDS:.0f} s"}
    except (ServiceError, ValueError, OSError) as exc:
        result = {"ok": False, "message": str(exc)}
    else:
        mine = [s for s in sites if not s.get("shared") and (s["id"] == label
                                                             or label in s["id"])]  # fmt: skip
        if not mine:
            result = {"ok": False, "message": "No site came from these credentials"}
        elif any(s.get("error") for s in mine):
            result = {"ok": False, "message": "; ".join(f"{s['id']}: {s['error']}"
                                                        for s in mine if s.get("error"))}
        else:
            result = {"ok": True, "message": "; ".join(
                f"{s['id']}: {len(s['images'])} images, {len(s['flavors'])} flavors"
                for s in mine)}  # fmt: skip
    owner = (await identity(request)).key
    return _render(request, 200 if result["ok"] else 502,
                   items=rows.list_for(svc.store, owner), editing=None,
                   tested={"id": int(credential_id), **result})  # fmt: skip
