"""Templates are parsed in a few worker processes, off the event loop and under a CPU-time cap,
so one user's expensive template neither stalls other users' requests nor the server.

Each worker runs one job at a time. Before a job it sets its RLIMIT_CPU soft limit to the CPU
it has used plus the cap: past it the kernel sends SIGXCPU and the job ends with a typed
refusal. A job stuck in C code (which a signal cannot interrupt) is caught by the parent's
wall-clock deadline instead: the worker is killed and replaced. Workers are forked from a
forkserver that has already imported the languages, so a replacement is warm in milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import os
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from orbis.service.errors import InvalidRequest, ServiceError

log = logging.getLogger(__name__)
PRELOAD = ["orbis.service.parse_pool", "orbis.service.parse_warm"]  # workers fork warm


class ParseLimitExceeded(InvalidRequest):
    """A template that took more than the parse CPU cap; the message names the setting."""


class _CpuCapReached(Exception):
    pass


def _on_sigxcpu(signum: int, frame: Any) -> None:
    raise _CpuCapReached


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# never sent to a worker: parsing needs no secret
_NOT_FOR_WORKERS = {"ORBIS_SECRET_KEY"}


def _limit_settings() -> dict[str, str]:
    """This process's ORBIS_* settings (limits, fetch rules, mirrors, template folders), sent
    with each job: a worker then applies the server's current values, not those of the moment
    it was forked."""
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith("ORBIS_") and name not in _NOT_FOR_WORKERS
    }


def _use_limit_settings(settings: dict[str, str]) -> None:
    for name in [n for n in os.environ if n.startswith("ORBIS_") and n not in settings]:
        del os.environ[name]
    os.environ.update(settings)


def worker_main(conn: Connection, cpu_seconds: float) -> None:
    """A worker's loop: receive (function, args), answer (kind, value)."""
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is the parent's to handle
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    while True:
        try:
            func, args, settings = conn.recv()
        except (EOFError, OSError):
            return
        _use_limit_settings(settings)
        soft = math.ceil(_cpu_used() + cpu_seconds)
        unlimited = hard == resource.RLIM_INFINITY
        resource.setrlimit(resource.RLIMIT_CPU, (soft if unlimited else min(soft, hard), hard))
        try:
            answer: tuple[str, Any] = ("ok", func(*args))
        except _CpuCapReached:
            answer = ("cpu", None)
        except InvalidRequest as exc:
            answer = ("invalid", str(exc))
        except Exception as exc:  # a bug in a parser: the parent logs it, the user gets a 400
            answer = ("error", f"{type(exc).__name__}: {exc}")
        finally:
            resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
        conn.send(answer)
        if answer[0] == "cpu":
            return  # the parent starts a fresh worker


@dataclass
class _Worker:
    process: Any
    conn: Connection

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


@dataclass
class ParsePool:
    """`await pool.run(func, *args)` runs a module-level function in a worker."""

    workers: int
    cpu_seconds: float
    _idle: asyncio.Queue[_Worker] | None = None
    _all: list[_Worker] = field(default_factory=list)
    # jobs refused so far, by how: "cpu" (RLIMIT_CPU in the worker), "deadline" (killed)
    refused: dict[str, int] = field(default_factory=lambda: {"cpu": 0, "deadline": 0})

    @property
    def wall_seconds(self) -> float:
        # RLIMIT_CPU counts whole seconds, so SIGXCPU comes within cap + 1 s of CPU; twice
        # that in wall time means the worker is stuck where SIGXCPU cannot reach it (C code)
        # or starved of CPU
        return 2 * (math.ceil(self.cpu_seconds) + 1)

    def _context(self) -> Any:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx

    def _spawn(self) -> _Worker:
        ctx = self._context()
        parent, child = ctx.Pipe()
        process = ctx.Process(target=worker_main, args=(child, self.cpu_seconds), daemon=True,
                              name="orbis-parse")  # fmt: skip
        process.start()
        child.close()
        worker = _Worker(process, parent)
        self._all.append(worker)
        return worker

    async def start(self) -> None:
        """Start the workers (off the loop: the first start also starts the forkserver)."""
        if self._idle is not None:
            return
        self._idle = asyncio.Queue()
        for _ in range(self.workers):
            self._idle.put_nowait(await asyncio.to_thread(self._spawn))

    def close(self) -> None:
        for worker in self._all:
            worker.kill()
        self._all.clear()
        self._idle = None

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        if self._idle is None:
            await self.start()
        assert self._idle is not None
        worker = await self._idle.get()
        keep = True
        try:
            kind, value = await self._ask(worker, func, args)
            if kind == "cpu":
                keep = False
                raise self._exceeded("cpu")
            if kind == "invalid":
                raise InvalidRequest(value)
            if kind == "error":
                log.error("parsing failed in a worker: %s", value)
                raise ServiceError(f"Error reading the template: {value}")
            return value
        except (TimeoutError, EOFError, OSError):
            keep = False  # stuck past the deadline, or killed by the kernel (hard limit)
            raise self._exceeded("deadline") from None
        finally:
            if not keep:
                self._replace(worker)
            elif self._idle is not None:
                self._idle.put_nowait(worker)

    async def _ask(self, worker: _Worker, func: Callable[..., Any], args: tuple[Any, ...]
                   ) -> tuple[str, Any]:  # fmt: skip
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()
        fd = worker.conn.fileno()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(fd, wake)
        try:
            worker.conn.send((func, args, _limit_settings()))
            await asyncio.wait_for(readable, self.wall_seconds)
        finally:
            loop.remove_reader(fd)
        answer: tuple[str, Any] = worker.conn.recv()
        return answer

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        if worker in self._all:
            self._all.remove(worker)
        if self._idle is not None:
            self._idle.put_nowait(self._spawn())  # a fork of the warm forkserver: quick

    def _exceeded(self, how: str) -> ParseLimitExceeded:
        self.refused[how] += 1
        log.warning("a template was refused past the parse cap (%s)", how)
        return ParseLimitExceeded(f"limit: reading the template took more than "
                                  f"{self.cpu_seconds:g} s of CPU time (ORBIS_PARSE_CPU_SECONDS)")
