"""No silent fallback: without a container engine the runner pool refuses, naming the opt-in;
with the opt-in, the host runs recipes and the pool says so loudly."""

import asyncio
import logging

import pytest

from orbis.providers.local import LocalProvider
from orbis.runner.base import RunnerUnavailable
from orbis.runner.host import HostRunner
from orbis.runner.pool import RunnerPool


def test_no_engine_is_a_clear_refusal_never_the_host(tmp_path, monkeypatch):
    monkeypatch.delenv("ORBIS_UNSAFE_RECIPES_ON_HOST", raising=False)
    monkeypatch.setenv("ORBIS_HOME", str(tmp_path))  # no project podman socket there
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    pool = RunnerPool(LocalProvider(base_url=f"unix://{tmp_path}/no-engine.sock", timeout=2))
    with pytest.raises(RunnerUnavailable, match="ORBIS_UNSAFE_RECIPES_ON_HOST=1") as caught:
        asyncio.run(pool.get("i1", tmp_path / "runner", tmp_path / "key"))
    assert "no container engine for the recipe runner" in str(caught.value)


def test_the_host_only_by_explicit_opt_in_logged_as_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ORBIS_UNSAFE_RECIPES_ON_HOST", "1")
    with caplog.at_level(logging.WARNING, logger="orbis.runner.pool"):
        pool = RunnerPool(LocalProvider(base_url=f"unix://{tmp_path}/no-engine.sock"))
    assert any("ON THIS HOST" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)  # fmt: skip
    runner = asyncio.run(pool.get("i1", tmp_path / "runner", tmp_path / "key"))
    assert isinstance(runner, HostRunner)
    asyncio.run(pool.close())
