"""No silent fallback: without a container engine the runner pool refuses, naming the opt-in;
with the opt-in, the host runs recipes and the pool says so loudly."""

import asyncio
import logging

import asyncssh
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


def test_without_an_engine_the_front_end_runs_the_plays(tmp_path, monkeypatch):
    # IM's way on a cloud-only server: the infrastructure's master node, never the host
    from orbis.providers.sim import SimProvider
    from orbis.runner.frontend import FrontendRunner, FrontLogin

    monkeypatch.delenv("ORBIS_UNSAFE_RECIPES_ON_HOST", raising=False)
    pool = RunnerPool(SimProvider(tmp_path / "sim.db"))
    key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    login = FrontLogin("203.0.113.7", 22, "cloudadm", "site-a")
    runner = asyncio.run(pool.get("i1", tmp_path / "w", tmp_path / "k", (login, key)))
    assert isinstance(runner, FrontendRunner) and runner.login == login
    assert str(runner.paths.key_file).startswith("/var/tmp/orbis-runner-i1/")
    with pytest.raises(RunnerUnavailable, match="no front-end node with a public address"):
        asyncio.run(RunnerPool(SimProvider(tmp_path / "sim2.db")).get("i2", tmp_path / "v",
                                                                     tmp_path / "k"))  # fmt: skip
