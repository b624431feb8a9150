"""What an import may take over of an infrastructure's functions, by the rule nodes follow
(adoption.py): the exported record names an OSCAR service or a Lambda function, the client's
text, so it is adopted only if the importer owns it. Else it comes in "detached": shown, never
updated, invoked or deleted (destroying the infrastructure only forgets it).

- hosted on an OSCAR node of the template: that node's machine was adopted, and the record's
  endpoint is where that machine answers;
- on an OSCAR auth line: the importer has a line with that id, at that endpoint, and reading the
  service with the importer's credentials succeeds;
- on AWS Lambda: the importer has a Lambda line with that id, and its keys can read the
  function.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from orbis.auth import Identity
from orbis.engine.function_places import (
    HOSTED_PREFIX,
    LAMBDA_TYPES,
    OSCAR_TYPES,
    Waiting,
    hosted_target,
    lambda_target,
    lines_of,
    oscar_target,
)
from orbis.engine.functions import DETACHED_STATE
from orbis.model.infrastructure import Template
from orbis.providers.aws_lambda import LambdaClient, LambdaError
from orbis.providers.oscar import FdlError, OscarClient, OscarError
from orbis.service.adoption import ADOPTED
from orbis.store.schema import NodeRow

log = logging.getLogger(__name__)



def function_detached_reason(name: str, why: str) -> str:
    return (f"function {name} is detached: it was imported from data naming a service that "
            f"is not shown to be yours ({why}), so Orbis never updates, runs or deletes it "
            "(destroying the infrastructure only forgets it)")  # fmt: skip


async def adopt_functions(who: Identity, functions: list[dict[str, Any]],
                          nodes: list[dict[str, Any]], template: Template | None) -> None:
    """Mark in place each imported function record the importer does not own as detached."""
    for row in functions:
        if not row.get("service"):
            continue  # nothing was made: nothing to own
        why = await _refusal(who, row, nodes, template)
        if why:
            row.update(state=DETACHED_STATE, digest="",
                       error=function_detached_reason(str(row.get("name")), why))  # fmt: skip


async def _refusal(who: Identity, row: dict[str, Any], nodes: list[dict[str, Any]],
                   template: Template | None) -> str:  # fmt: skip
    """"" when the importer owns what `row` names, else why not."""
    site, service = str(row.get("site") or ""), str(row.get("service") or "")
    try:
        if site.startswith(HOSTED_PREFIX):
            return _hosted_refusal(row, site.removeprefix(HOSTED_PREFIX), nodes, template)
        backend = str(row.get("backend") or "")
        kinds = LAMBDA_TYPES if backend == "lambda" else OSCAR_TYPES
        line = next((x for x in lines_of(list(who.clouds), kinds) if x.get("id") == site), None)
        if line is None:
            return f"you have no {backend or 'oscar'} auth line with id = {site}"
        if backend == "lambda":
            region, _, name = service.partition(":")
            await asyncio.to_thread(LambdaClient(lambda_target(line), region).get, name)
            return ""
        target = oscar_target(line)
        if target.endpoint != str(row.get("endpoint") or "").rstrip("/"):
            return f"your line {site} is at another endpoint"
        await asyncio.to_thread(OscarClient(target).get_service, service)
        return ""
    except (OscarError, LambdaError, FdlError) as exc:
        return f"not readable with your credentials: {exc}"
    except Exception as exc:  # an SDK's own error: never adopt on doubt
        log.exception("import: cannot check function %s at %s", service, site)
        return f"cannot be checked: {type(exc).__name__}"


def _hosted_refusal(row: dict[str, Any], host: str, nodes: list[dict[str, Any]],
                    template: Template | None) -> str:  # fmt: skip
    component = template.components.get(host) if template is not None else None
    if template is None or component is None:
        return f"no OSCAR node {host} in the template"
    machines = sorted((n for n in nodes if n.get("name") == component.host
                       and not n.get("deleted")), key=lambda n: n.get("vm_id") or 0)  # fmt: skip
    if not machines or machines[0].get("adoption") != ADOPTED:
        return f"its OSCAR node's machine {component.host} is not yours"
    try:
        endpoint = hosted_target(template, host, [NodeRow(**n) for n in machines]).endpoint
    except (Waiting, FdlError) as exc:
        return f"its OSCAR node's address cannot be told: {exc}"
    if endpoint != str(row.get("endpoint") or "").rstrip("/"):
        return f"its endpoint is not where {component.host} answers ({endpoint})"
    return ""
