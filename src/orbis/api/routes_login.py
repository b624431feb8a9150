"""How to log in to a node (an Orbis view, not in IM): address, port, user, the infrastructure's
key and the jump host a private-only node is reached through. `orbis ssh/get/put` read it; IM
clients get the same facts from the VM's RADL."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from orbis.api.deps import AUTH_HEADER, caller, service

router = APIRouter(dependencies=[Depends(AUTH_HEADER)], tags=["orbis"])


def parse_jump(jump: str | None) -> dict[str, object] | None:
    """ "user@host:port" (how the engine records a jump) as its parts."""
    if not jump:
        return None
    login, _, port = jump.rpartition(":")
    user, _, host = login.rpartition("@")
    return {"user": user or "root", "address": host, "port": int(port or 22)}


@router.get("/orbis/infrastructures/{infId}/vms/{vmId}/login")
async def login(request: Request, infId: str, vmId: str) -> Response:
    """`{name, vm_id, address, port, user, private_key, jump}` for one VM of yours."""
    who = await caller(request)
    svc = service(request)
    row = svc.infrastructure(who, infId)
    node = svc.node(who, infId, vmId)
    jump = parse_jump(node.jump)
    body = {
        "name": node.name,
        "vm_id": node.vm_id,
        "state": node.state,
        # through a jump host the private address is the one to use; else the public one
        "address": (node.private_ip if jump else node.public_ip or node.private_ip),
        "port": node.ssh_port or 22,
        "user": node.ssh_user,
        "private_key": svc.private_key(row),
        "jump": jump,
    }
    return Response(json.dumps(body), media_type="application/json")
