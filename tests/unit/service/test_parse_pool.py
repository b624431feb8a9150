"""The parse pool: jobs run in worker processes under a CPU cap, a job past the cap is refused
with a message naming the setting, the pool recovers, and the event loop stays free meanwhile."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from orbis.service.errors import InvalidRequest
from orbis.service.parse_jobs import parse
from orbis.service.parse_pool import ParseLimitExceeded, ParsePool

pytestmark = pytest.mark.serial  # CPU-time caps against wall deadlines: not beside deployments
HELLO = ("tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n"
         "  node_templates:\n    vm: {type: tosca.nodes.Compute}\n")


async def _loop_stalls(until: asyncio.Future[object]) -> float:
    """The longest the event loop was unavailable while `until` was pending."""
    worst = 0.0
    while not until.done():
        start = time.perf_counter()
        await asyncio.sleep(0.01)
        worst = max(worst, time.perf_counter() - start - 0.01)
    return worst


def test_python_work_past_the_cpu_cap_is_refused_and_the_pool_recovers() -> None:
    async def scenario() -> None:
        pool = ParsePool(workers=1, cpu_seconds=0.5)
        await pool.start()
        try:
            start = time.perf_counter()
            # statistics.mean sums in Python: SIGXCPU (RLIMIT_CPU) interrupts it
            hostile = asyncio.ensure_future(pool.run(statistics.mean, range(10**9)))
            stall = await _loop_stalls(hostile)
            with pytest.raises(ParseLimitExceeded, match="ORBIS_PARSE_CPU_SECONDS"):
                await hostile
            assert time.perf_counter() - start < pool.wall_seconds
            assert stall < 0.2  # the loop kept answering while the job ran
            assert pool.refused == {"cpu": 1, "deadline": 0}  # SIGXCPU, not the kill
            template, language = await pool.run(parse, HELLO, "t.yaml")  # a fresh worker
            assert language == "tosca" and "vm" in template.computes
        finally:
            pool.close()

    asyncio.run(scenario())


def test_a_job_that_does_not_return_is_killed_at_the_wall_deadline() -> None:
    async def scenario() -> None:
        pool = ParsePool(workers=2, cpu_seconds=0.3)
        await pool.start()
        try:
            start = time.perf_counter()
            # blocked, using no CPU: SIGXCPU never comes (as a worker stuck in C code)
            hostile = asyncio.ensure_future(pool.run(time.sleep, 60))
            await asyncio.sleep(0.05)
            quick = time.perf_counter()
            template, _ = await pool.run(parse, HELLO, "t.yaml")  # the other worker answers
            assert time.perf_counter() - quick < 0.5
            with pytest.raises(ParseLimitExceeded, match="ORBIS_PARSE_CPU_SECONDS"):
                await hostile
            assert time.perf_counter() - start < pool.wall_seconds + 1.5
            assert len(pool._all) == 2  # the killed worker was replaced
            assert pool.refused == {"cpu": 0, "deadline": 1}
            await pool.run(parse, HELLO, "t.yaml")
            await pool.run(parse, HELLO, "t.yaml")
        finally:
            pool.close()

    asyncio.run(scenario())


def test_template_errors_come_back_typed() -> None:
    async def scenario() -> None:
        pool = ParsePool(workers=1, cpu_seconds=2)
        try:
            with pytest.raises(InvalidRequest, match="ORBIS_MAX_YAML_DEPTH"):
                await pool.run(parse, "tosca_definitions_version: tosca_simple_yaml_1_0\n"
                               "x: " + "[" * 200 + "]" * 200, "t.yaml")  # fmt: skip
            start = time.perf_counter()
            await pool.run(parse, HELLO, "t.yaml")
            assert time.perf_counter() - start < 0.1  # warm: the forkserver preloaded it all
        finally:
            pool.close()

    asyncio.run(scenario())
