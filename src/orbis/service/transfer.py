"""Export and import of an infrastructure (IM's `data` property and PUT /infrastructures).

The export is a JSON document (a string inside `{"data": ...}`) holding the infrastructure,
its nodes and steps; cloud credentials and owners are left out: whoever imports it becomes its
owner, with their own credentials. An import always gets a new id.

Two forms: Orbis's own (FORMAT, the default) and IM's (`format="im"`: im_write.py writes it,
im_read.py reads it), so an infrastructure moves between IM and Orbis both ways.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.orm import DeclarativeBase

from orbis.auth import Identity
from orbis.model.infrastructure import Template
from orbis.paths import new_id
from orbis.service.access import AccessMixin
from orbis.service.adoption import DETACHED, detached_reason
from orbis.service.errors import InvalidRequest
from orbis.service.function_adoption import adopt_functions
from orbis.service.im_import import ImImportMixin
from orbis.service.im_read import is_im_export
from orbis.service.im_write import im_document
from orbis.store.schema import FunctionRow, InfrastructureRow, NodeRow, StepRow

FORMAT = "orbis-export/1"
FORMATS = ("orbis", "im")  # of an export: Orbis's own (the default) or IM's
# Never exported: credentials are secrets; owners are the importer's; ids are per database.
SKIP = {"credentials", "owner_key", "owner_name", "infrastructure_id", "adoption"}


def _columns(model: type[DeclarativeBase]) -> dict[str, Any]:
    return {c.key: c for c in model.__table__.columns}


def _dump(row: Any, model: type[DeclarativeBase], *, keep_id: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _columns(model):
        if key in SKIP or (key == "id" and not keep_id):
            continue
        value = getattr(row, key)
        out[key] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _load(data: Any, model: type[DeclarativeBase], *, keep_id: bool = False) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidRequest("Error Importing Inf.: malformed data")
    out: dict[str, Any] = {}
    for key, column in _columns(model).items():
        if key in SKIP or (key == "id" and not keep_id) or key not in data:
            continue  # columns added since the export keep their defaults
        value = data[key]
        if isinstance(column.type, DateTime) and isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise InvalidRequest(f"Error Importing Inf.: bad date in {key}") from None
        out[key] = value
    return out


class TransferMixin(ImImportMixin, AccessMixin):
    async def export(self, who: Identity, infra_id: str, *, delete: bool = False,
                     form: str = "orbis") -> str:  # fmt: skip
        row = self.infrastructure(who, infra_id)
        if form not in FORMATS:
            raise InvalidRequest(f"Error Exporting Inf.: unknown format '{form}' "
                                 f"(one of: {', '.join(FORMATS)})")  # fmt: skip
        found = self.store.export_rows(row.id)
        assert found is not None
        infra, nodes, steps, functions = found
        text = (self._im_form(infra, nodes, functions) if form == "im"
                else self._orbis_form(infra, nodes, steps, functions))  # fmt: skip
        if delete:
            # IM: forget the infrastructure without touching its cloud resources
            scheduler = getattr(self, "scheduler", None)
            if scheduler is not None:
                await scheduler.cancel(row.id)
            self.store.set_phase(row.id, "deleted", "exported with delete")
            self.forget_template(row.id)
        return text

    def _im_form(self, infra: InfrastructureRow, nodes: list[NodeRow],
                 functions: list[FunctionRow]) -> str:  # fmt: skip
        # each site's type and host (never its secrets), for IM's per-VM `cloud`
        lines = self.cloud_credentials(infra.id)
        clouds = {str(x.get("id")): {"type": str(x.get("type") or ""),
                                     "host": str(x.get("host") or "")}
                  for x in lines if x.get("id")}  # fmt: skip
        clouds.update({s.id: {"type": s.type, "host": s.host} for s in self.sites.sites_for(lines)})
        # the key travels unsealed inside each VM's RADL, as in IM's export
        return im_document(infra, nodes, self.template(infra), self.private_key(infra), clouds,
                           functions)  # fmt: skip

    def _orbis_form(self, infra: InfrastructureRow, nodes: list[NodeRow], steps: list[StepRow],
                    functions: list[FunctionRow]) -> str:  # fmt: skip
        data = {
            "format": FORMAT,
            "id": infra.id,
            # the key travels unsealed, as in IM's export: the importing server seals it anew
            "infrastructure": {**_dump(infra, InfrastructureRow, keep_id=True),
                               "ssh_private_key": self.private_key(infra)},
            "nodes": [_dump(n, NodeRow) for n in nodes],
            "steps": [_dump(s, StepRow) for s in steps],
            # where each function went and what was sent: an adopted one is not sent again
            "functions": [_dump(f, FunctionRow) for f in functions],
        }
        return json.dumps(data)

    async def import_(self, who: Identity, text: str) -> str:
        try:
            data = json.loads(text)
            if isinstance(data, str):  # im_client's `export` prints the data JSON-quoted
                data = json.loads(data)
        except ValueError:
            raise InvalidRequest("Error Importing Inf.: the data is not JSON") from None
        except RecursionError:
            raise InvalidRequest("Error Importing Inf.: the data nests too deep") from None
        if is_im_export(data):
            return await self.import_im(who, data)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InvalidRequest("Error Importing Inf.: neither Orbis's export (format "
                                 f"{FORMAT}) nor IM's (vm_list)")
        # The id in the data is never used: a fresh one is made here (an id is a path on this
        # server and a label on its resources; a client must not choose it).
        infra = _load(data.get("infrastructure"), InfrastructureRow)
        infra_id = infra["id"] = new_id()
        for field in ("template",):
            if not isinstance(infra.get(field), str):
                raise InvalidRequest(f"Error Importing Inf.: missing {field}")
        try:
            nodes = [_load(n, NodeRow) for n in data.get("nodes") or []]
            steps = [_load(s, StepRow) for s in data.get("steps") or []]
            functions = [_load(f, FunctionRow) for f in data.get("functions") or []]
        except TypeError:
            raise InvalidRequest("Error Importing Inf.: malformed data") from None
        wanted = [n for n in nodes if not n.get("deleted") and n.get("desired") != "absent"]
        self.check_quota(who.key, len(wanted))  # early: before asking any cloud
        for node in nodes:
            # the provider ids are the client's text: adopt only what the importer owns
            node["adoption"] = await self.adoption(who, node)
            if node["adoption"] == DETACHED:
                node.update(needs_config=False, reboot_pending=False)
                node["log"] = f"{node.get('log') or ''}{detached_reason(node.get('vm_id', '?'))}\n"
        # a function is the client's text too: adopted by the same rule (function_adoption.py)
        hosted = any(str(f.get("site") or "").startswith("node:") for f in functions)
        await adopt_functions(who, functions, nodes,
                              await self._import_template(infra) if hosted else None)
        infra.update(deleted=False, owner_key=who.key, owner_name=who.name)
        if isinstance(infra.get("ssh_private_key"), str):
            infra["ssh_private_key"] = self.seal_private_key(infra["ssh_private_key"])
        if infra.get("phase") == "deleted":
            infra["phase"] = "done"
        with self.quota_lock(who.key):  # again, with the rows: one step for the user's quota
            self.check_quota(who.key, len(wanted))
            try:
                self.store.import_rows(infra, nodes, steps, who.owners(), functions)
            except Exception as exc:  # bad field types end here; the store rolled back
                raise InvalidRequest(
                    f"Error Importing Inf.: malformed data ({type(exc).__name__})"
                ) from None
        self.record_access(infra_id, who)
        self.forget_template(infra_id)
        return infra_id

    async def _import_template(self, infra: dict[str, Any]) -> Template | None:
        """The imported template, parsed (None if it does not parse: no hosted function can
        then be shown to be the importer's)."""
        try:
            template, _ = await self.parse_async(infra["template"],
                                                 str(infra.get("template_file") or "template"))
        except InvalidRequest:
            return None
        return template
