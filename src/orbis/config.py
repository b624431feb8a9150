"""Settings read from the environment, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _home() -> Path:
    return Path(os.environ.get("ORBIS_HOME") or Path.home() / ".local/share/orbis").resolve()


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str
    listen_host: str
    listen_port: int
    docker_host: str | None
    node_image: str
    max_parallel_launches: int
    # API (issue 4). Defaults keep a Settings built by hand (tests) working.
    oidc_issuers: tuple[str, ...] = ()  # ORBIS_OIDC_ISSUERS, comma-separated issuer URLs
    oidc_audience: str | None = None  # ORBIS_OIDC_AUDIENCE: required `aud` when set
    secret_key: str | None = field(default=None, repr=False)  # ORBIS_SECRET_KEY
    admin_users: tuple[str, ...] = field(default=(), repr=False)  # ORBIS_ADMIN_USERS
    max_request_bytes: int = 8 * 1024 * 1024  # ORBIS_MAX_REQUEST_BYTES → 413 beyond
    cors_origin: str | None = None  # ORBIS_CORS_ORIGIN: CORS on (IM's ENABLE_CORS) when set

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def work_dir(self) -> Path:
        """Per-infrastructure scratch space (keys for Ansible, inventories, playbooks)."""
        return self.home / "work"


def load() -> Settings:
    home = _home()
    return Settings(
        home=home,
        db_url=os.environ.get("ORBIS_DB_URL") or f"sqlite:///{home / 'orbis.db'}",
        listen_host=os.environ.get("ORBIS_LISTEN", "127.0.0.1"),
        listen_port=int(os.environ.get("ORBIS_PORT", "8800")),
        docker_host=os.environ.get("DOCKER_HOST"),
        node_image=os.environ.get("ORBIS_NODE_IMAGE", "orbis-node:latest"),
        max_parallel_launches=int(os.environ.get("ORBIS_PARALLEL_LAUNCHES", "32")),
        oidc_issuers=_csv("ORBIS_OIDC_ISSUERS"),
        oidc_audience=os.environ.get("ORBIS_OIDC_AUDIENCE") or None,
        secret_key=os.environ.get("ORBIS_SECRET_KEY") or None,
        # entries are `user:password` (local) or `__OPENID__<sub>` (token users)
        admin_users=_csv("ORBIS_ADMIN_USERS"),
        max_request_bytes=int(os.environ.get("ORBIS_MAX_REQUEST_BYTES", str(8 * 1024 * 1024))),
        cors_origin=os.environ.get("ORBIS_CORS_ORIGIN") or None,
    )


def _csv(name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in os.environ.get(name, "").split(",") if part.strip())


def docker_socket_candidates(settings: Settings) -> list[str]:
    """Engine API endpoints to try, most specific first: DOCKER_HOST, the project-owned podman
    socket, then a Docker daemon's usual socket."""
    urls = []
    if settings.docker_host:
        urls.append(settings.docker_host)
    urls.append(f"unix://{settings.run_dir / 'podman.sock'}")
    urls.append("unix:///var/run/docker.sock")
    return urls


@dataclass(frozen=True)
class ProviderSettings:
    """Which back-end the server uses (ORBIS_PROVIDER) and the simulated cloud's behaviour."""

    name: str
    sim_latency: float
    sim_failure_rate: float
    sim_config_seconds: float


def provider_settings() -> ProviderSettings:
    return ProviderSettings(
        name=os.environ.get("ORBIS_PROVIDER", "local"),
        sim_latency=float(os.environ.get("ORBIS_SIM_LATENCY", "0.05")),
        sim_failure_rate=float(os.environ.get("ORBIS_SIM_FAILURE_RATE", "0")),
        sim_config_seconds=float(os.environ.get("ORBIS_SIM_CONFIG_SECONDS", "0.05")),
    )


@dataclass(frozen=True)
class CoordinationSettings:
    """How servers sharing one database divide the work (docs/operations.md)."""

    lease_seconds: float  # ORBIS_LEASE_SECONDS: a dead server's work is taken over after this
    poll_seconds: float  # ORBIS_POLL_SECONDS: how often a server looks for unclaimed work


def coordination_settings() -> CoordinationSettings:
    return CoordinationSettings(
        lease_seconds=float(os.environ.get("ORBIS_LEASE_SECONDS", "10")),
        poll_seconds=float(os.environ.get("ORBIS_POLL_SECONDS", "1")),
    )
