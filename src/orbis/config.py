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
    # The recipe runner (docs/runner.md): the container users' Ansible runs in.
    runner_image: str = "orbis-runner:latest"  # ORBIS_RUNNER_IMAGE
    runner_cpus: float = 2.0  # ORBIS_RUNNER_CPUS
    runner_memory_mb: int = 2048  # ORBIS_RUNNER_MEMORY_MB
    runner_pids: int = 1024  # ORBIS_RUNNER_PIDS
    # ORBIS_UNSAFE_RECIPES_ON_HOST=1: a single-user install's opt-in to run recipes on the host
    unsafe_recipes_on_host: bool = False
    # The web dashboard (docs/web.md): the template catalogue it offers (ORBIS_CATALOGUE_DIR;
    # None: the repository's examples/catalogue when present) and how long a login lasts.
    catalogue_dir: Path | None = None
    web_session_seconds: int = 8 * 3600  # ORBIS_WEB_SESSION_SECONDS
    catalogue_hide_tags: tuple[str, ...] = ()  # ORBIS_CATALOGUE_HIDE_TAGS (IM's HIDE_TOSCA_TAGS)
    # OIDC sign-in on the dashboard (authorization code + PKCE) with the trusted issuers
    oidc_client_id: str | None = None  # ORBIS_OIDC_CLIENT_ID: the dashboard's client at them
    oidc_client_secret: str | None = field(default=None, repr=False)  # ORBIS_OIDC_CLIENT_SECRET
    oidc_scopes: str = "openid profile email"  # ORBIS_OIDC_SCOPES

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
        runner_image=os.environ.get("ORBIS_RUNNER_IMAGE", "orbis-runner:latest"),
        runner_cpus=float(os.environ.get("ORBIS_RUNNER_CPUS", "2")),
        runner_memory_mb=int(os.environ.get("ORBIS_RUNNER_MEMORY_MB", "2048")),
        runner_pids=int(os.environ.get("ORBIS_RUNNER_PIDS", "1024")),
        unsafe_recipes_on_host=os.environ.get("ORBIS_UNSAFE_RECIPES_ON_HOST") == "1",
        catalogue_dir=Path(os.environ["ORBIS_CATALOGUE_DIR"]).resolve()
        if os.environ.get("ORBIS_CATALOGUE_DIR") else None,
        web_session_seconds=int(os.environ.get("ORBIS_WEB_SESSION_SECONDS", str(8 * 3600))),
        catalogue_hide_tags=_csv("ORBIS_CATALOGUE_HIDE_TAGS"),
        oidc_client_id=os.environ.get("ORBIS_OIDC_CLIENT_ID") or None,
        oidc_client_secret=os.environ.get("ORBIS_OIDC_CLIENT_SECRET") or None,
        oidc_scopes=os.environ.get("ORBIS_OIDC_SCOPES") or "openid profile email",
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
class Limits:
    """Bounds on the work one request may cause (docs/limits.md); each refusal names its
    setting. Read at each use, so a test or an operator's change applies without a restart."""

    max_template_bytes: int  # ORBIS_MAX_TEMPLATE_BYTES: one template or playbook document
    max_yaml_nodes: int  # ORBIS_MAX_YAML_NODES: values once aliases are expanded
    max_yaml_depth: int  # ORBIS_MAX_YAML_DEPTH: nesting of mappings and sequences
    max_random_length: int  # ORBIS_MAX_RANDOM_LENGTH: random(N) in TOSCA inputs and RADL
    max_regex_length: int  # ORBIS_MAX_REGEX_LENGTH: ?filter= and `pattern` constraints
    max_nodes_per_infra: int  # ORBIS_MAX_NODES_PER_INFRA (an admin may set it per user)
    max_nodes_per_user: int  # ORBIS_MAX_NODES_PER_USER (idem)
    parse_cpu_seconds: float  # ORBIS_PARSE_CPU_SECONDS: CPU time to parse one template
    parse_workers: int  # ORBIS_PARSE_WORKERS: processes that parse templates
    max_streams_per_user: int  # ORBIS_MAX_STREAMS_PER_USER: open event streams (SSE) at once


LIMIT_DEFAULTS = {
    "ORBIS_MAX_TEMPLATE_BYTES": 2 * 1024 * 1024,
    "ORBIS_MAX_YAML_NODES": 250_000,
    "ORBIS_MAX_YAML_DEPTH": 64,
    "ORBIS_MAX_RANDOM_LENGTH": 1024,
    "ORBIS_MAX_REGEX_LENGTH": 1000,
    "ORBIS_MAX_NODES_PER_INFRA": 100,
    "ORBIS_MAX_NODES_PER_USER": 200,
    "ORBIS_PARSE_CPU_SECONDS": 5,
    "ORBIS_PARSE_WORKERS": 2,
    "ORBIS_MAX_STREAMS_PER_USER": 10,
}


def limits() -> Limits:
    def number(name: str) -> float:
        raw = os.environ.get(name)
        return float(raw) if raw else float(LIMIT_DEFAULTS[name])

    return Limits(
        max_template_bytes=int(number("ORBIS_MAX_TEMPLATE_BYTES")),
        max_yaml_nodes=int(number("ORBIS_MAX_YAML_NODES")),
        max_yaml_depth=int(number("ORBIS_MAX_YAML_DEPTH")),
        max_random_length=int(number("ORBIS_MAX_RANDOM_LENGTH")),
        max_regex_length=int(number("ORBIS_MAX_REGEX_LENGTH")),
        max_nodes_per_infra=int(number("ORBIS_MAX_NODES_PER_INFRA")),
        max_nodes_per_user=int(number("ORBIS_MAX_NODES_PER_USER")),
        parse_cpu_seconds=number("ORBIS_PARSE_CPU_SECONDS"),
        parse_workers=max(1, int(number("ORBIS_PARSE_WORKERS"))),
        max_streams_per_user=int(number("ORBIS_MAX_STREAMS_PER_USER")),
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
