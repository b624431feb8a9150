"""Functions of an infrastructure as users see them, and synchronous runs of one."""

from __future__ import annotations

import asyncio
from typing import Any

from orbis.auth import Identity
from orbis.providers.aws_lambda import LambdaError
from orbis.providers.oscar import FdlError, OscarError
from orbis.service.core import ServiceBase
from orbis.service.errors import Conflict, InvalidRequest, NotFoundError

MAX_INPUT = 8 * 2**20  # a run's input is held in memory and base64-encoded for OSCAR


class FunctionsMixin(ServiceBase):
    def functions_of(self, who: Identity, infra_id: str) -> list[dict[str, Any]]:
        """Each function of the template with where it went, its endpoint and state."""
        row = self.infrastructure(who, infra_id)
        template = self.template(row) if row.template_format == "tosca" or row.template else None
        records = {r.name: r for r in self.store.functions(row.id)}
        names = sorted(set(template.functions if template else ()) | set(records))
        found = []
        for name in names:
            fn = template.functions.get(name) if template else None
            record = records.get(name)
            found.append({
                "name": name,
                "service": record.service if record else
                str((fn.properties.get("name") if fn else "") or ""),
                "backend": record.backend if record else "",
                "site": record.site if record else "",
                "endpoint": record.endpoint if record else "",
                "state": record.state if record else ("absent" if fn and fn.count == 0
                                                      else "pending"),
                "error": record.error if record else "",
                "image": (fn.image if fn else "") or "",
            })  # fmt: skip
        return found

    async def invoke(self, who: Identity, infra_id: str, name: str, data: bytes) -> bytes:
        """Run one function synchronously on `data`; its answer."""
        row = self.infrastructure(who, infra_id)
        if len(data) > MAX_INPUT:
            raise InvalidRequest(f"the input is larger than the limit of {MAX_INPUT} bytes")
        template = self.template(row)
        if name not in template.functions:
            raise NotFoundError(f"no function '{name}' in infrastructure {infra_id}")
        try:
            return await asyncio.to_thread(self.functions.invoke, row.id, name, template, data)
        except (FdlError, OscarError, LambdaError) as exc:
            raise Conflict(f"function '{name}': {exc}") from exc
