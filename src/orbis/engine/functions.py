"""Functions of an infrastructure on OSCAR (and AWS Lambda): created, updated and deleted to
follow the template, each one on its own (a failure is that function's, with the reason).

Where a function goes: hosted on an OSCAR node of the template (created once that node's
machine is configured; endpoint `https://<dns_host>`, else `http://<its public address>`, user
`oscar` with the node's `password`, certificates not verified, as IM's recipe does), or on an
OSCAR cluster of the user's auth lines (`type = OSCAR; host = …; username/password` or
`token`), the one its placement policy's `cloud_id` names, else the first. What was sent is
kept as a digest in the store (`functions` table), so a reconcile with an unchanged function
sends nothing; a changed one is PUT, a moved one is deleted where it was and created anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orbis.model.infrastructure import ServerlessFunction, Template
from orbis.model.states import NodeState
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

OSCAR_TYPES = {"oscar"}
HOSTED_PREFIX = "node:"
DEFAULT_OSCAR_PASSWORD = "oscar123"  # tosca.nodes.indigo.OSCAR's default


class Waiting(Exception):
    """The function's place is not ready yet (its OSCAR node is still being configured)."""


@dataclass(frozen=True)
class Placement:
    site: str  # auth line id, or "node:<OSCAR node>"
    target: OscarTarget


CloudLines = Callable[[str], list[dict[str, str]]]
LogLine = Callable[[str, str], None]


def _line_target(line: Mapping[str, str]) -> OscarTarget:
    host = (line.get("host") or "").strip()
    endpoint = host if "://" in host else f"https://{host}"
    verify = str(line.get("verify", line.get("ssl_verify", "true"))).lower() not in (
        "false", "0", "no")  # fmt: skip
    return OscarTarget(endpoint=endpoint.rstrip("/"), user=line.get("username"),
                       password=line.get("password"), token=line.get("token"),
                       verify=verify, cluster_id=line.get("id") or "oscar")  # fmt: skip


def oscar_lines(lines: list[dict[str, str]]) -> list[dict[str, str]]:
    return [x for x in lines if (x.get("type") or "").lower() in OSCAR_TYPES]


def hosted_target(template: Template, host: str, nodes: list[NodeRow]) -> OscarTarget:
    """Where the OSCAR node `host` answers; Waiting until its machine is configured."""
    component = template.components.get(host)
    if component is None:
        raise FdlError(f"host '{host}' is not a software node of the template")
    machines = sorted((n for n in nodes if n.name == component.host and not n.deleted),
                      key=lambda n: n.vm_id)  # fmt: skip
    if not machines or machines[0].state != NodeState.CONFIGURED:
        raise Waiting(f"waiting for {component.host} (OSCAR node {host}) to be configured")
    dns = str(component.properties.get("dns_host") or "").strip().strip("'\"")
    if dns:
        endpoint = dns if "://" in dns else f"https://{dns}"
    else:
        address = machines[0].public_ip or machines[0].private_ip
        if not address:
            raise FdlError(f"OSCAR node {host} has no address")
        endpoint = f"http://{address}"
    password = str(component.properties.get("password") or DEFAULT_OSCAR_PASSWORD)
    return OscarTarget(endpoint=endpoint, user="oscar", password=password, verify=False,
                       cluster_id=host)  # fmt: skip


def place(fn: ServerlessFunction, template: Template, nodes: list[NodeRow],
          lines: list[dict[str, str]]) -> Placement:  # fmt: skip
    if fn.host:
        return Placement(f"{HOSTED_PREFIX}{fn.host}", hosted_target(template, fn.host, nodes))
    candidates = oscar_lines(lines)
    if fn.cloud_id:
        candidates = [x for x in candidates if x.get("id") == fn.cloud_id]
        if not candidates:
            raise FdlError(f"function '{fn.name}': no OSCAR auth line with id = {fn.cloud_id}")
    if not candidates:
        raise FdlError(f"function '{fn.name}' is on no OSCAR node and the auth data has no "
                       "line of type OSCAR")  # fmt: skip
    line = candidates[0]
    if not line.get("host"):
        raise FdlError(f"OSCAR auth line '{line.get('id', '')}' has no host")
    return Placement(line.get("id") or "oscar", _line_target(line))


def clusters_of(template: Template, nodes: list[NodeRow],
                lines: list[dict[str, str]]) -> dict[str, OscarTarget]:  # fmt: skip
    """The OSCAR clusters replicas may name: the user's OSCAR lines (by id) and the OSCAR nodes
    of the template that are up (by node name)."""
    found = {x.get("id") or "oscar": _line_target(x) for x in oscar_lines(lines) if x.get("host")}
    for fn in template.functions.values():
        if fn.host and fn.host not in found:
            with contextlib.suppress(Waiting, FdlError):
                found[fn.host] = hosted_target(template, fn.host, nodes)
    return found


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
                await self._remove(infra.id, row, lines, template, nodes)
        clusters = clusters_of(template, nodes, lines)
        await asyncio.gather(*(self._apply(infra, fn, rows.get(name), template, nodes, lines,
                                           clusters) for name, fn in wanted.items()))

    async def _apply(self, infra: InfrastructureRow, fn: ServerlessFunction,
                     row: FunctionRow | None, template: Template, nodes: list[NodeRow],
                     lines: list[dict[str, str]],
                     clusters: dict[str, OscarTarget]) -> None:  # fmt: skip
        try:
            placement = place(fn, template, nodes, lines)
            service = await asyncio.to_thread(self._definition, fn, clusters)
        except Waiting as exc:
            self.store.save_function(infra.id, fn.name, state="pending", error=str(exc))
            return
        except (FdlError, OscarError) as exc:
            self._failed(infra.id, fn.name, str(exc))
            return
        digest = spec_digest(service)
        same_place = row is not None and row.site == placement.site
        if same_place and row is not None and row.digest == digest and row.state == "running":
            return  # nothing changed: nothing is sent
        try:
            if row is not None and row.service and not same_place:
                await self._remove(infra.id, row, lines, template, nodes, keep_row=True)
            client = self.client(placement.target)
            if same_place and row is not None and row.state == "running":
                await asyncio.to_thread(client.update_service, service)
                verb = "updated"
            else:
                verb = await asyncio.to_thread(self._create, client, service)
        except OscarError as exc:
            self._failed(infra.id, fn.name, f"on {placement.site}: {exc}", site=placement.site)
            return
        self.store.save_function(
            infra.id, fn.name, backend="oscar", site=placement.site, service=service["name"],
            endpoint=placement.target.endpoint, digest=digest, state="running", error="",
            deleted=False,
        )  # fmt: skip
        self.log_line(infra.id, f"Function {fn.name}: OSCAR service {service['name']} {verb} "
                                f"at {placement.target.endpoint}")  # fmt: skip

    def _definition(self, fn: ServerlessFunction,
                    clusters: dict[str, OscarTarget]) -> dict[str, Any]:  # fmt: skip
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

    @staticmethod
    def _create(client: OscarClient, service: dict[str, Any]) -> str:
        try:
            client.create_service(service)
            return "created"
        except OscarError as exc:
            if exc.status != 409:
                raise
        client.update_service(service)  # made by a run a crash interrupted: brought up to date
        return "updated"

    def _failed(self, infra_id: str, name: str, message: str, **fields: Any) -> None:
        self.store.save_function(infra_id, name, state="failed", error=message, **fields)
        self.log_line(infra_id, f"Error: function {name}: {message}")

    # -- removal ---------------------------------------------------------------------------
    async def _remove(self, infra_id: str, row: FunctionRow, lines: list[dict[str, str]],
                      template: Template, nodes: list[NodeRow],
                      keep_row: bool = False) -> bool:  # fmt: skip
        if row.service and row.state in ("running", "failed") and row.site:
            try:
                target = self._target_of(row, lines, template, nodes)
                gone = await asyncio.to_thread(self.client(target).delete_service, row.service)
            except (OscarError, FdlError, Waiting) as exc:
                self._failed(infra_id, row.name, f"removal failed: {exc}")
                return False
            if gone:
                self.log_line(infra_id, f"Function {row.name}: OSCAR service {row.service} "
                                        f"deleted from {row.endpoint}")  # fmt: skip
        if not keep_row:
            self.store.save_function(infra_id, row.name, state="deleted", deleted=True, error="")
        return True

    def _target_of(self, row: FunctionRow, lines: list[dict[str, str]], template: Template,
                   nodes: list[NodeRow]) -> OscarTarget:  # fmt: skip
        if row.site.startswith(HOSTED_PREFIX):
            host = row.site.removeprefix(HOSTED_PREFIX)
            component = template.components.get(host)
            password = str((component.properties.get("password") if component else None)
                           or DEFAULT_OSCAR_PASSWORD)  # fmt: skip
            return OscarTarget(endpoint=row.endpoint, user="oscar", password=password,
                               verify=False, cluster_id=host)  # fmt: skip
        for line in oscar_lines(lines):
            if (line.get("id") or "oscar") == row.site:
                return _line_target(line)
        raise FdlError(f"no OSCAR auth line with id = {row.site} any more")

    async def destroy(self, infra_id: str, template: Template | None) -> None:
        """Delete every function of the infrastructure (before its machines go)."""
        rows = self.store.functions(infra_id)
        if not rows:
            return
        lines = self.clouds(infra_id)
        nodes = self.store.nodes(infra_id)
        empty = Template(source_file="", version="")
        for row in rows:
            await self._remove(infra_id, row, lines, template or empty, nodes)

    # -- reading ---------------------------------------------------------------------------
    def attributes(self, infra_id: str, template: Template) -> dict[str, dict[str, Any]]:
        """IM's `endpoint` and `credential` of each live function."""
        found: dict[str, dict[str, Any]] = {}
        rows = [r for r in self.store.functions(infra_id) if r.state == "running"]
        if not rows:
            return found
        lines = self.clouds(infra_id)
        nodes = self.store.nodes(infra_id)
        for row in rows:
            try:
                target = self._target_of(row, lines, template, nodes)
            except FdlError:
                continue
            found[row.name] = {"endpoint": row.endpoint, "credential": target.credential()}
        return found

    def target(self, infra_id: str, name: str, template: Template) -> tuple[FunctionRow,
                                                                          OscarTarget]:
        """A live function's record and how to reach it (for invoke and attributes)."""
        for row in self.store.functions(infra_id):
            if row.name == name and row.state == "running":
                return row, self._target_of(row, self.clouds(infra_id), template,
                                            self.store.nodes(infra_id))  # fmt: skip
        raise FdlError(f"function '{name}' is not running")
