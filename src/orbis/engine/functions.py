"""Functions of an infrastructure on OSCAR and AWS Lambda: created, updated and deleted to
follow the template, each on its own (a failure is that function's, with the reason).

Where each goes is function_places.py's. What was sent is kept as a digest in the store
(`functions` table), so a reconcile with an unchanged function sends nothing; a changed one is
updated (OSCAR: PUT; Lambda: configuration and code), a moved one is deleted where it was and
created anew. For Lambda the record's `service` is `<region>:<function name>`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from orbis.engine.function_places import Place, Waiting, clusters_of, place, site_place
from orbis.model.infrastructure import ServerlessFunction, Template
from orbis.providers.aws_lambda import LambdaClient, LambdaError, lambda_definition
from orbis.providers.oscar import (
    FdlError,
    OscarClient,
    OscarError,
    OscarTarget,
    service_definition,
    spec_digest,
)
from orbis.store.repository import Store
from orbis.store.schema import FunctionRow, InfrastructureRow, NodeRow

log = logging.getLogger(__name__)

DETACHED_STATE = "detached"  # imported, not shown to be the importer's: never acted on

CloudLines = Callable[[str], list[dict[str, str]]]
LogLine = Callable[[str, str], None]
ERRORS = (FdlError, OscarError, LambdaError)


class FunctionEngine:
    def __init__(self, store: Store, clouds: CloudLines, log_line: LogLine) -> None:
        self.store = store
        self.clouds = clouds
        self.log_line = log_line

    def client(self, target: OscarTarget) -> OscarClient:
        return OscarClient(target)

    # -- converge --------------------------------------------------------------------------
    async def converge(self, infra: InfrastructureRow, template: Template) -> None:
        """Create, update or delete each function to match the template."""
        rows = {r.name: r for r in self.store.functions(infra.id)}
        if not template.functions and not rows:
            return
        nodes = self.store.nodes(infra.id)
        lines = self.clouds(infra.id)
        wanted = {n: f for n, f in template.functions.items() if f.count > 0}
        for name, row in rows.items():
            if name not in wanted:
                await self._remove(infra.id, row, lines, template)
        # imported detached (service/function_adoption.py): not ours, never sent to
        wanted = {n: f for n, f in wanted.items()
                  if n not in rows or rows[n].state != DETACHED_STATE}  # fmt: skip
        clusters = clusters_of(template, nodes, lines)
        await asyncio.gather(*(self._apply(infra, fn, rows.get(name), template, nodes, lines,
                                           clusters) for name, fn in wanted.items()))

    async def _apply(self, infra: InfrastructureRow, fn: ServerlessFunction,
                     row: FunctionRow | None, template: Template, nodes: list[NodeRow],
                     lines: list[dict[str, str]],
                     clusters: dict[str, OscarTarget]) -> None:  # fmt: skip
        try:
            where = place(fn, template, nodes, lines)
            spec = await asyncio.to_thread(self._spec, where, fn, infra.id, clusters)
        except Waiting as exc:
            self.store.save_function(infra.id, fn.name, state="pending", error=str(exc))
            return
        except ERRORS as exc:
            self._failed(infra.id, fn.name, str(exc))
            return
        digest = spec_digest(spec)
        same_place = (row is not None and row.site == where.site and row.backend == where.backend
                      # a hosted OSCAR whose machine came back at another address: made anew
                      and (where.oscar is None or row.endpoint == where.oscar.endpoint))
        live = same_place and row is not None and row.state == "running"
        if live and row is not None and row.digest == digest:
            return  # nothing changed: nothing is sent
        try:
            if row is not None and row.service and not same_place:
                await self._remove(infra.id, row, lines, template, keep_row=True)
            verb, service, endpoint = await asyncio.to_thread(self._send, where, spec, live)
        except ERRORS as exc:
            self._failed(infra.id, fn.name, f"on {where.site}: {exc}", site=where.site,
                         backend=where.backend)  # fmt: skip
            return
        self.store.save_function(
            infra.id, fn.name, backend=where.backend, site=where.site, service=service,
            endpoint=endpoint, digest=digest, state="running", error="", deleted=False,
        )  # fmt: skip
        what = "OSCAR service" if where.backend == "oscar" else "Lambda function"
        self.log_line(infra.id, f"Function {fn.name}: {what} {service} {verb} at {endpoint}")

    def _spec(self, where: Place, fn: ServerlessFunction, infra_id: str,
              clusters: dict[str, OscarTarget]) -> dict[str, Any]:  # fmt: skip
        if where.backend == "lambda":
            return lambda_definition(fn, infra_id)
        return self._fdl(fn, clusters)

    def _fdl(self, fn: ServerlessFunction, clusters: dict[str, OscarTarget]) -> dict[str, Any]:
        """The FDL, with the clusters its replicas name and the MinIO of any cluster its
        storage names as `minio.<cluster>` without defining it (a replica writing back)."""
        conf = {cid: {"endpoint": t.endpoint, "auth_user": t.user or "oscar",
                      "auth_password": t.password or "", "ssl_verify": t.verify}
                for cid, t in clusters.items()}  # fmt: skip
        defined = (fn.storage_providers or {}).get("minio") or {}
        extra: dict[str, dict[str, dict[str, Any]]] = {}
        for item in list(fn.inputs) + list(fn.outputs):
            kind, _, sid = str((item or {}).get("storage_provider") or "").partition(".")
            if kind == "minio" and sid in clusters and sid not in defined:
                minio = self.client(clusters[sid]).config().get("minio_provider") or {}
                extra.setdefault("minio", {})[sid] = {
                    k: minio[k] for k in ("endpoint", "verify", "access_key", "secret_key",
                                          "region") if k in minio}  # fmt: skip
        return service_definition(fn, clusters=conf, extra_storage=extra)

    def _send(self, where: Place, spec: dict[str, Any], live: bool) -> tuple[str, str, str]:
        """(verb, service, endpoint) once the function is made or changed."""
        if where.aws is not None:
            region = spec["Region"]
            aws = LambdaClient(where.aws, region)
            if live:
                endpoint = aws.update(spec, image_changed=True)
                verb = "updated"
            else:
                endpoint, verb = aws.create(spec), "created"
            return verb, f"{region}:{spec['FunctionName']}", endpoint
        assert where.oscar is not None
        client = self.client(where.oscar)
        if live:
            client.update_service(spec)
            return "updated", spec["name"], where.oscar.endpoint
        try:
            client.create_service(spec)
            return "created", spec["name"], where.oscar.endpoint
        except OscarError as exc:
            if exc.status != 409:
                raise
        client.update_service(spec)  # made by a run a crash interrupted: brought up to date
        return "updated", spec["name"], where.oscar.endpoint

    def _failed(self, infra_id: str, name: str, message: str, **fields: Any) -> None:
        self.store.save_function(infra_id, name, state="failed", error=message, **fields)
        self.log_line(infra_id, f"Error: function {name}: {message}")

    # -- removal ---------------------------------------------------------------------------
    async def _remove(self, infra_id: str, row: FunctionRow, lines: list[dict[str, str]],
                      template: Template, keep_row: bool = False) -> bool:  # fmt: skip
        if row.service and row.site and row.state != DETACHED_STATE:  # detached: forgotten
            try:
                where = site_place(row.site, row.endpoint, template, lines,
                                   self.store.nodes(infra_id))  # fmt: skip
                gone = await asyncio.to_thread(self._delete, where, row.service)
            except ERRORS as exc:
                self._failed(infra_id, row.name, f"removal failed: {exc}")
                return False
            if gone:
                self.log_line(infra_id, f"Function {row.name}: {row.service} deleted from "
                                        f"{row.site}")  # fmt: skip
        if not keep_row:
            self.store.save_function(infra_id, row.name, state="deleted", deleted=True, error="")
        return True

    def _delete(self, where: Place, service: str) -> bool:
        if where.aws is not None:
            region, _, name = service.partition(":")
            return LambdaClient(where.aws, region).delete(name)
        assert where.oscar is not None
        return self.client(where.oscar).delete_service(service)

    async def destroy(self, infra_id: str, template: Template | None) -> None:
        """Delete every function of the infrastructure (before its machines go)."""
        rows = self.store.functions(infra_id)
        if not rows:
            return
        lines = self.clouds(infra_id)
        for row in rows:
            await self._remove(infra_id, row, lines, template or Template("", ""))

    # -- reading and running ---------------------------------------------------------------
    def attributes(self, infra_id: str, template: Template) -> dict[str, dict[str, Any]]:
        """IM's `endpoint` and `credential` of each live function (credential: null for
        Lambda)."""
        found: dict[str, dict[str, Any]] = {}
        rows = [r for r in self.store.functions(infra_id) if r.state == "running"]
        if not rows:
            return found
        lines = self.clouds(infra_id)
        nodes = self.store.nodes(infra_id)
        for row in rows:
            try:
                where = site_place(row.site, row.endpoint, template, lines, nodes)
            except FdlError:
                continue
            credential = where.oscar.credential() if where.oscar is not None else None
            found[row.name] = {"endpoint": row.endpoint, "credential": credential}
        return found

    def invoke(self, infra_id: str, name: str, template: Template, data: bytes) -> bytes:
        """Run a live function synchronously on `data` (OSCAR `/run/<service>`, Lambda
        Invoke); its answer. Blocking: call it in a thread."""
        row = next((r for r in self.store.functions(infra_id) if r.name == name), None)
        if row is None or row.state != "running":
            state = "not deployed" if row is None else f"{row.state}: {row.error}".rstrip(": ")
            raise FdlError(f"function '{name}' is {state}")
        where = site_place(row.site, row.endpoint, template, self.clouds(infra_id),
                           self.store.nodes(infra_id))  # fmt: skip
        if where.aws is not None:
            region, _, function = row.service.partition(":")
            return LambdaClient(where.aws, region).invoke(function, data)
        assert where.oscar is not None
        return self.client(where.oscar).run(row.service, data)
