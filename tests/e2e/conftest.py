"""Fixtures shared by the end-to-end tests: a live container engine, the node image, SSH keys.

The e2e tests skip (with the reason) when no engine can be started or the node image cannot be
built; set ORBIS_E2E_REQUIRED=1 (e.g. in CI) to make that a failure instead.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import asyncssh
import docker
import pytest

from orbis.providers.local import LocalProvider
from orbis.service import OrbisService
from orbis.store.repository import Store
from orbis.testing.server import RunningServer, orbis_server

REPO = Path(__file__).resolve().parents[2]


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("ORBIS_E2E_REQUIRED") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _run_script(script: str, *args: str, timeout: float) -> str:
    """Run a repo script; return the last line of its stdout, or skip/fail with its stderr."""
    env = dict(os.environ)
    env.setdefault("ORBIS_HOME", str(REPO / ".orbis"))
    try:
        done = subprocess.run(
            [str(REPO / script), *args], env=env, capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        _unavailable(f"{script} {' '.join(args)} could not run: {err}")
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        _unavailable(f"{script} {' '.join(args)} failed (exit {done.returncode}): {tail}")
    lines = done.stdout.strip().splitlines()
    if not lines:
        _unavailable(f"{script} {' '.join(args)} printed nothing")
    return lines[-1].strip()


def _running_engine() -> tuple[str | None, str | None]:
    """DOCKER_HOST if it is set and answers (an engine someone else started: no second one is
    started), and ORBIS_NODE_IMAGE if that engine has it."""
    url = os.environ.get("DOCKER_HOST")
    if not url:
        return None, None
    try:
        client = docker.DockerClient(base_url=url, timeout=10)
        client.ping()
    except Exception:  # noqa: BLE001 - any failure: start our own as before
        return None, None
    image = os.environ.get("ORBIS_NODE_IMAGE")
    try:
        found = image if image and client.images.get(image) else None
    except Exception:  # noqa: BLE001 - not there: build it as before
        found = None
    return url, found


@pytest.fixture(scope="session")
def engine_url() -> str:
    """DOCKER_HOST of a live Docker Engine API (Docker, or podman started by scripts/engine.sh),
    with the node image built (images/node/build.sh, cached by recipe hash). Sets DOCKER_HOST and
    ORBIS_NODE_IMAGE in os.environ so code reading orbis.config sees them. A DOCKER_HOST that
    already answers is used as it is (a shared engine; no second podman service is started)."""
    url, image = _running_engine()
    url = url or _run_script("scripts/engine.sh", "start", timeout=90)
    image = image or _run_script("images/node/build.sh", timeout=1200)
    os.environ["DOCKER_HOST"] = url
    os.environ.setdefault("ORBIS_NODE_IMAGE", image)
    # the container recipes run in (docs/runner.md), built from the node image
    os.environ.setdefault("ORBIS_RUNNER_IMAGE", _run_script("images/runner/build.sh", timeout=600))
    return url


@pytest.fixture
def shared_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """A throw-away database on the PostgreSQL or MariaDB server (parametrise indirectly with
    "postgresql" or "mariadb"), dropped afterwards; a server that does not answer fails."""
    from orbis.testing.databases import DatabaseUnavailable, create_database, drop_database

    try:
        url = create_database(request.param, prefix="orbis_ha")
    except DatabaseUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield url
    drop_database(url)


@dataclass(frozen=True)
class KeyPair:
    private_path: Path  # OpenSSH private key file, mode 0600 (for ssh -i / Ansible)
    public: str  # "ssh-ed25519 AAAA... orbis-e2e"
    key: asyncssh.SSHKey


@pytest.fixture(scope="session")
def ssh_keypair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """A fresh ed25519 key pair for logging into test nodes."""
    key = asyncssh.generate_private_key("ssh-ed25519", comment="orbis-e2e")
    path = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    path.write_bytes(key.export_private_key())
    path.chmod(0o600)
    return KeyPair(path, key.export_public_key().decode().strip(), key)


@pytest.fixture
async def local_service(engine_url: str, tmp_path: Path) -> AsyncIterator[OrbisService]:
    """A started service on the local back-end with a store of its own; shut down after the
    test (which destroys what it made)."""
    svc = OrbisService(Store(f"sqlite:///{tmp_path / 'orbis.db'}"),
                       LocalProvider(base_url=engine_url), tmp_path / "work")  # fmt: skip
    await svc.resume()
    yield svc
    await svc.shutdown()


@pytest.fixture(scope="module")
def server(engine_url: str) -> Iterator[RunningServer]:
    """A throw-away Orbis server (subprocess, own home, port and user) shared by one test
    module's tests; a module may override it (test_im_client's logs in as another user)."""
    with orbis_server(engine_url) as running:
        yield running
