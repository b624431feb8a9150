"""The monitors: one loop per elastic infrastructure, on exactly one server.

A monitor holds the store lease `elastic:<infrastructure id>` (store/coordination.py), so with
several servers sharing a database exactly one watches each cluster, and another takes over
when that one dies. Each cycle: read Slurm on the front-end over SSH (one command), ask the
policy (policy.py), act through the desired state (a worker powered on is a node row added, one
powered off a node wanted absent: the reconciler does the rest, as for `orbis scale`), and
record each new decision as an event with its reason. What it remembers lives in the `meta`
table (state.py), so a restart resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shlex
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC
from typing import Any, Protocol

import asyncssh
from sqlalchemy import or_, select
from sqlalchemy.exc import DBAPIError

from orbis.configure.ssh import SSHNotReady, connect, run_command, wait_ssh
from orbis.elastic import join, slurm
from orbis.elastic import state as saved
from orbis.elastic.policy import Decision, History, Worker, decide
from orbis.engine.scheduler import Scheduler
from orbis.model.elastic import ElasticCluster, WorkerPool
from orbis.model.hostnames import given_name, host_name
from orbis.model.infrastructure import Template
from orbis.model.states import NodeState
from orbis.store.coordination import Leases
from orbis.store.repository import Store
from orbis.store.schema import EventRow, InfrastructureRow, NodeRow, utcnow

log = logging.getLogger(__name__)

SSH_TIMEOUT = 20.0
OUTPUT_LIMIT = 4 << 20  # bytes of the front-end's answer read at most (about 20,000 jobs)
KEEP_PENDING = 50  # pending jobs listed in the view (all are counted)
DISCOVER_EVERY = 2.0  # seconds between looks for elastic infrastructures nobody watches
JOIN_LOOK = 0.25  # seconds between looks for a new worker's address (quick join)
INFO = ("wait", "unsatisfiable")  # decisions that change nothing: said once while they hold


class Host(Protocol):
    """What a monitor needs of the service."""

    store: Store
    leases: Leases
    scheduler: Scheduler

    def template(self, row: InfrastructureRow) -> Template: ...
    def private_key(self, row: InfrastructureRow) -> str: ...
    def check_quota(self, owner_key: str, total: int, infra_id: str | None = None) -> None: ...
    def quota_lock(self, owner_key: str) -> AbstractContextManager[None]: ...


def lease_name(infra_id: str) -> str:
    return f"elastic:{infra_id}"


class Monitors:
    """Finds elastic infrastructures and runs a monitor for each whose lease it gets."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._finder: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._finder = asyncio.create_task(self._discover())

    async def stop(self) -> None:
        tasks = [*self.tasks.values(), *([self._finder] if self._finder else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _discover(self) -> None:
        while True:
            try:
                ids = await asyncio.to_thread(self.candidates)
                for infra_id in ids:
                    task = self.tasks.get(infra_id)
                    if task is None or task.done():
                        self.tasks[infra_id] = asyncio.create_task(self._watch(infra_id))
            except DBAPIError as exc:
                log.warning("elastic monitors: database unreachable: %s", exc)
            except Exception:
                log.exception("elastic monitors")
            await asyncio.sleep(DISCOVER_EVERY)

    def candidates(self) -> list[str]:
        """Live infrastructures whose template may be elastic (parsed later to be sure)."""
        store = self.host.store
        with store.session() as s:
            ids = s.scalars(select(InfrastructureRow.id).where(
                InfrastructureRow.deleted.is_(False), InfrastructureRow.desired != "absent",
                or_(InfrastructureRow.template.contains("ElasticCluster"),
                    InfrastructureRow.template.contains("ec3_max_instances"))))  # fmt: skip
            return list(ids)

    async def _watch(self, infra_id: str) -> None:
        name = lease_name(infra_id)
        leases = self.host.leases
        if not await asyncio.to_thread(leases.try_acquire, name):
            return  # another server watches it
        monitor = Monitor(self.host, infra_id, lambda: leases.renew(name))
        try:
            while True:
                pause = await monitor.cycle()
                if pause is None:
                    return
                if not await self._pause(name, pause):
                    log.warning("lost the lease %s to another server", name)
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("elastic monitor of %s", infra_id)
        finally:
            await monitor.close()
            with contextlib.suppress(DBAPIError):
                await asyncio.to_thread(leases.release, name)


    async def _pause(self, name: str, seconds: float) -> bool:
        """Sleep between two cycles, renewing the lease at least every third of its life (a
        `poll` longer than the lease must not let another server take it meanwhile); False
        once it is not ours any more."""
        leases = self.host.leases
        step = max(0.1, leases.ttl / 3)
        left = seconds
        while True:
            await asyncio.sleep(min(step, left))
            left -= step
            if not await asyncio.to_thread(leases.renew, name):
                return False
            if left <= 0:
                return True


class Monitor:
    def __init__(self, host: Host, infra_id: str,
                 still_ours: Callable[[], bool] | None = None) -> None:  # fmt: skip
        self.host = host
        self.store = host.store
        self.infra_id = infra_id
        # renews the lease and says whether it is still ours: asked after the (slow) reading
        # of Slurm, so a server whose lease ran out meanwhile acts on nothing
        self.still_ours = still_ours
        # one SSH connection to the front-end, kept between cycles (a new one costs a key
        # exchange, most of a reading's time); dropped on any error and made again
        self._front: tuple[tuple[Any, ...], asyncssh.SSHClientConnection,
                           contextlib.AsyncExitStack] | None = None  # fmt: skip
        self._joins: dict[int, asyncio.Task[None]] = {}  # quick joins under way, by VM id
        self._front_files: str | None = None  # the front-end's munge key and slurm.conf

    async def close(self) -> None:
        for task in self._joins.values():
            task.cancel()
        await asyncio.gather(*self._joins.values(), return_exceptions=True)
        self._joins.clear()
        await self._drop_front()

    async def _drop_front(self) -> None:
        if self._front is not None:
            stack = self._front[2]
            self._front = None
            with contextlib.suppress(Exception):
                await stack.aclose()

    async def cycle(self) -> float | None:
        """One look and the actions it calls for; seconds until the next (None: stop)."""
        row = self.store.get(self.infra_id)
        if row is None or row.deleted or row.desired == "absent":
            saved.forget(self.store, self.infra_id)
            return None
        template = self.host.template(row)
        cluster = template.elastic
        if cluster is None:
            return None
        state = saved.load(self.store, self.infra_id)
        nodes = [n for n in self.store.nodes(row.id) if not n.deleted]
        front = next((n for n in nodes if n.name == cluster.front and n.desired == "running"
                      and n.state == NodeState.CONFIGURED), None)  # fmt: skip
        if front is None:
            self._say(state, [Decision("wait", "waiting for the front-end "
                                       f"'{cluster.front}' to be configured")])  # fmt: skip
            saved.save(self.store, self.infra_id, state)
            return cluster.knobs.poll
        started = time.monotonic()
        try:
            view = slurm.parse(await self._on_front(row, front, slurm.COMMAND))
        except (TimeoutError, OSError, asyncssh.Error, slurm.SlurmReadError) as exc:
            state.error = f"cannot read Slurm on {cluster.front}: {exc or type(exc).__name__}"
            self._say(state, [Decision("wait", state.error)])
            saved.save(self.store, self.infra_id, state)
            return cluster.knobs.poll
        read_seconds = time.monotonic() - started
        state.error = ""
        now = time.time()
        workers, names, leaving = self._workers(cluster, template, nodes, view, state, now)
        unknown = [(n.name, n.kind) for n in view.nodes.values()
                   if n.name not in names and n.name not in leaving]  # fmt: skip
        history = History(
            since_power_on=None if state.last_power_on is None else now - state.last_power_on,
            since_power_off=None if state.last_power_off is None else now - state.last_power_off,
            join_failures=dict(state.join_failures),
        )
        decisions = decide(cluster, workers, view.pending, unknown, history)
        if self.still_ours is not None and not await asyncio.to_thread(self.still_ours):
            log.warning("elastic monitor of %s: lease lost while reading Slurm; not acting",
                        self.infra_id)  # fmt: skip
            return None
        done = [d for d in [await self._act(row, front, cluster, d, state, now)
                            for d in decisions] if d is not None]  # fmt: skip
        self._say(state, done)
        state.view = _view(cluster, workers, view, read_seconds, now)
        saved.save(self.store, self.infra_id, state)
        return cluster.knobs.poll

    # -- reading ---------------------------------------------------------------------------
    def _workers(self, cluster: ElasticCluster, template: Template, nodes: list[NodeRow],
                 view: slurm.SlurmView, state: saved.MonitorState, now: float
                 ) -> tuple[list[Worker], dict[str, int], set[str]]:  # fmt: skip
        """(workers as the policy sees them, their Slurm names → VM id, names of leaving ones)."""
        workers: list[Worker] = []
        names: dict[str, int] = {}
        leaving: set[str] = set()
        for n in nodes:
            pool = cluster.pool(n.name)
            if pool is None:
                continue
            name = host_name(template.computes.get(n.name), n.name, n.vm_id, given_name(n))[0]
            if n.desired != "running":
                leaving.add(name)
                continue
            names[name] = n.vm_id
            seen = view.nodes.get(name)
            kind = seen.kind if seen else None
            vm = str(n.vm_id)
            _track(state.idle_since, vm, kind == "idle", now)
            if kind == "idle" and seen and seen.last_busy:  # a job shorter than a poll
                busy = min(seen.last_busy, now)
                state.idle_since[vm] = max(state.idle_since[vm], busy)
            _track(state.down_since, vm, kind in ("down", "drain"), now)
            created = n.created_at if n.created_at.tzinfo else n.created_at.replace(tzinfo=UTC)
            # a worker started again (ec3_reuse_nodes) is as old as that start: its boot and
            # its paid period (ec3_destroy_interval) begin anew
            age = (now - state.started[vm] if vm in state.started
                   else (utcnow() - created).total_seconds())  # fmt: skip
            workers.append(Worker(
                n.vm_id, n.name, name, n.state, age, kind,
                max(0, seen.cpus - seen.cpus_alloc) if seen else 0,
                now - state.idle_since.get(vm, now), now - state.down_since.get(vm, now),
            ))  # fmt: skip
        for gone in set(state.idle_since) | set(state.down_since) | set(state.started):
            if int(gone) not in names.values():
                state.idle_since.pop(gone, None)
                state.down_since.pop(gone, None)
                state.started.pop(gone, None)
        return workers, names, leaving

    async def _on_front(self, row: InfrastructureRow, front: NodeRow, command: str) -> str:
        """Run a command on the front-end; its output, at most OUTPUT_LIMIT bytes (the node is
        the user's: what it answers is untrusted, in size and in time). The connection is kept
        for the next command; a failed command drops it."""
        host = front.public_ip or front.private_ip or ""
        where = (host, front.ssh_port or 22, front.jump, front.ssh_user, row.id)
        if self._front is None or self._front[0] != where:
            await self._drop_front()
            key = asyncssh.import_private_key(self.host.private_key(row))
            options = {"username": front.ssh_user, "client_keys": [key], "known_hosts": None,
                       "connect_timeout": SSH_TIMEOUT, "login_timeout": SSH_TIMEOUT}  # fmt: skip
            stack = contextlib.AsyncExitStack()
            try:
                conn = await stack.enter_async_context(
                    connect(host, front.ssh_port or 22, options, front.jump))
            except BaseException:
                await stack.aclose()
                raise
            self._front = (where, conn, stack)
        conn = self._front[1]
        try:
            async with conn.create_process(command, stderr=asyncssh.STDOUT) as process:
                output = await asyncio.wait_for(_read_bounded(process.stdout), SSH_TIMEOUT)
                process.close()
        except BaseException:
            await self._drop_front()
            raise
        return output

    # -- the quick join (join.py) ------------------------------------------------------------
    def _start_join(self, row: InfrastructureRow, front: NodeRow, cluster: ElasticCluster,
                    pool: WorkerPool, vm_id: int) -> None:  # fmt: skip
        if not pool.quick_join:
            return
        for done in [v for v, t in self._joins.items() if t.done()]:
            del self._joins[done]
        self._joins[vm_id] = asyncio.create_task(self._join(row, front, cluster, pool, vm_id))

    async def _join(self, row: InfrastructureRow, front: NodeRow, cluster: ElasticCluster,
                    pool: WorkerPool, vm_id: int) -> None:  # fmt: skip
        """Join a new worker to Slurm once it answers SSH, ahead of its Ansible run; any
        failure leaves the join to the worker's recipe (said in the log)."""
        started = time.monotonic()
        deadline = started + cluster.knobs.boot_deadline
        template = self.host.template(row)
        try:
            node = None
            while time.monotonic() < deadline:  # the reconciler launches it
                node = next((n for n in self.store.nodes(row.id) if n.vm_id == vm_id), None)
                if node is None or node.deleted or node.desired != "running":
                    return
                if node.private_ip or node.public_ip:
                    break
                await asyncio.sleep(JOIN_LOOK)
            if node is None or not (node.private_ip or node.public_ip):
                return
            name = host_name(template.computes.get(node.name), node.name, node.vm_id,
                             given_name(node))[0]  # fmt: skip
            slurm.delete_command(name)  # the name check: it reaches a shell below
            if self._front_files is None:
                self._front_files = join.front_files(
                    await self._on_front(row, front, _sudo(front, join.READ_FRONT)))
            key = self.host.private_key(row)
            address = node.public_ip or node.private_ip or ""
            await wait_ssh(address, user=node.ssh_user, private_key=key,
                           port=node.ssh_port or 22, jump=node.jump,
                           timeout=max(1.0, deadline - time.monotonic()))  # fmt: skip
            command = join.worker_command(cluster, pool, name, front.public_ip or "",
                                          sudo=node.ssh_user != "root")  # fmt: skip
            status, output = await run_command(address, command, user=node.ssh_user,
                                               private_key=key, port=node.ssh_port or 22,
                                               jump=node.jump, stdin=self._front_files,
                                               timeout=SSH_TIMEOUT)  # fmt: skip
        except asyncio.CancelledError:
            raise
        except (TimeoutError, OSError, asyncssh.Error, SSHNotReady, ValueError) as exc:
            self._front_files = None
            self.store.append_log(row.id, f"Elastic: quick join of VM {vm_id} failed "
                                  f"({exc or type(exc).__name__}); its recipe will join it\n")
            return
        if status != 0:
            self._front_files = None
            self.store.append_log(row.id, f"Elastic: quick join of {name} failed (status "
                                  f"{status}: {output.strip()[-300:]}); its recipe will join it\n")
            return
        self.store.append_log(row.id, f"Elastic: {name} joined Slurm ahead of its recipes, "
                              f"{time.monotonic() - started:.1f} s after its power-on\n")

    # -- acting ----------------------------------------------------------------------------
    async def _act(self, row: InfrastructureRow, front: NodeRow, cluster: ElasticCluster,
                   d: Decision, state: saved.MonitorState, now: float
                   ) -> Decision | None:  # fmt: skip
        """Carry a decision out; the decision as it turned out (None: nothing to say)."""
        if d.action == "power_on" and d.pool:
            pool = cluster.pool(d.pool)
            stopped = sorted(n.vm_id for n in self.store.nodes(row.id) if n.name == d.pool
                             and n.desired == "stopped" and not n.deleted)  # fmt: skip
            if pool is not None and pool.reuse and stopped:  # ec3_reuse_nodes: started again
                self.store.update_nodes(row.id, [stopped[0]], desired="running")
                self._kick(row.id)
                state.last_power_on = now
                state.started[str(stopped[0])] = now
                return Decision(d.action, f"{d.reason} (VM {stopped[0]}, stopped before: "
                                "starting it again)", d.pool, stopped[0])  # fmt: skip
            try:
                with self.host.quota_lock(row.owner_key):
                    live = [n for n in self.store.nodes(row.id) if n.desired != "absent"]
                    self.host.check_quota(row.owner_key, len(live) + 1, row.id)
                    given = self._free_name(row.id, pool)
                    vm_ids = self.store.add_nodes(row.id, [d.pool],
                                                  [{"host_name": given} if given else None])
            except Exception as exc:  # QuotaExceeded, Conflict: said, tried again next cycle
                return Decision("wait", f"not powering on: {exc}")
            self._kick(row.id)
            state.last_power_on = now
            if pool is not None:
                self._start_join(row, front, cluster, pool, vm_ids[0])
            named = f", {given}" if given else ""
            return Decision(d.action, f"{d.reason} (VM {vm_ids[0]}{named})", d.pool, vm_ids[0])
        if d.action in ("power_off", "retry", "give_up") and d.vm_id is not None:
            if d.action == "power_off" and d.name and not d.reason.startswith("Slurm lost"):
                still_idle = await self._drain(row, front, d.name)
                if not still_idle:
                    return Decision("wait", f"{d.name} got a job meanwhile: kept")
            if d.action in ("retry", "give_up") and d.pool:
                state.join_failures[d.pool] = state.join_failures.get(d.pool, 0) + 1
            pool = cluster.pool(d.pool or "")
            reuse = (d.action == "power_off" and pool is not None and pool.reuse
                     and not d.reason.startswith("Slurm lost"))  # fmt: skip
            self.store.update_nodes(row.id, [d.vm_id], desired="stopped" if reuse else "absent")
            self._kick(row.id)
            state.last_power_off = now
            return d
        if d.action == "forget" and d.name:
            with contextlib.suppress(OSError, asyncssh.Error, asyncio.TimeoutError, ValueError):
                await self._on_front(row, front, slurm.delete_command(d.name))
            return d
        return d

    def _free_name(self, infra_id: str, pool: WorkerPool | None) -> str | None:
        """The first name of the pool's ec3_node_pattern no worker has (None: no pattern, or
        all taken), given to the new worker's record before the reconciler can launch it."""
        if pool is None or not pool.names:
            return None
        taken = {given_name(n) for n in self.store.nodes(infra_id)
                 if n.name == pool.compute and not n.deleted}  # fmt: skip
        return next((x for x in pool.names if x not in taken), None)

    async def _drain(self, row: InfrastructureRow, front: NodeRow, name: str) -> bool:
        """Drain a worker before it goes; True if it is still without a job (a job may have
        started since the reading); a worker that got one is resumed."""
        try:
            output = await self._on_front(row, front, slurm.drain_command(name))
            node = slurm.parse_nodes(output.strip().splitlines()[-1]).get(name)
        except (TimeoutError, OSError, asyncssh.Error, slurm.SlurmReadError, IndexError):
            return False
        if node is not None and node.cpus_alloc == 0 and "COMPLETING" not in node.flags:
            return True
        with contextlib.suppress(OSError, asyncssh.Error, asyncio.TimeoutError):
            await self._on_front(row, front, slurm.resume_command(name))
        return False

    def _kick(self, infra_id: str) -> None:
        self.store.request(infra_id)
        self.host.scheduler.kick(infra_id)

    def _say(self, state: saved.MonitorState, decisions: list[Decision]) -> None:
        """Record decisions as events (and in the log); information that holds from one cycle
        to the next is said once."""
        now = time.time()
        said = []
        for d in decisions:
            key = f"{d.action}:{d.job or ''}:{_steady(d.reason)}"
            said.append(key)
            if d.action in INFO and key in state.reported:
                continue
            state.record(now, d.action, d.reason)
            self._event(d)
        state.reported = said

    def _event(self, d: Decision) -> None:
        with self.store.session() as s:
            s.add(EventRow(infrastructure_id=self.infra_id, vm_id=d.vm_id, subject="elastic",
                           name=d.pool or d.name or "", to_state=d.action,
                           message=d.reason))  # fmt: skip
        self.store.append_log(self.infra_id, f"Elastic: {d.reason}\n")


async def _read_bounded(stream: asyncssh.SSHReader[str]) -> str:
    parts: list[str] = []
    size = 0
    while size < OUTPUT_LIMIT:
        chunk = await stream.read(OUTPUT_LIMIT - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return "".join(parts)


def _sudo(node: NodeRow, command: str) -> str:
    return command if node.ssh_user == "root" else f"sudo -n sh -c {shlex.quote(command)}"


def _track(since: dict[str, float], vm: str, now_true: bool, now: float) -> None:
    if now_true:
        since.setdefault(vm, now)
    else:
        since.pop(vm, None)


def _steady(reason: str) -> str:
    """A reason without its changing numbers of seconds, to tell a new situation from the same."""
    return re.sub(r"\d+ s\b", "N s", reason)


def _view(cluster: ElasticCluster, workers: list[Worker], view: slurm.SlurmView,
          read_seconds: float, now: float) -> dict[str, Any]:  # fmt: skip
    pending = view.pending
    return {
        "at": now,
        "read_seconds": round(read_seconds, 3),
        "workers": [{"vm_id": w.vm_id, "pool": w.pool, "name": w.name, "state": w.state,
                     "lrms": view.nodes[w.name].state if w.name in view.nodes else None,
                     "idle_seconds": round(w.idle_for)} for w in workers],  # fmt: skip
        "slurm_nodes": {n.name: n.state for n in view.nodes.values()},
        "pending_count": len(pending),
        "pending_cpus": sum(j.cpus for j in pending),
        "pending": [{"id": j.id, "cpus": j.cpus, "nodes": j.nodes, "memory_mb": j.memory_mb,
                     "partition": j.partition, "reason": j.reason}
                    for j in pending[:KEEP_PENDING]],  # fmt: skip
        "running_jobs": sum(1 for j in view.jobs if j.state == "RUNNING"),
    }
