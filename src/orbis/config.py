"""Settings read from the environment, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
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
        max_parallel_launches=int(os.environ.get("ORBIS_PARALLEL_LAUNCHES", "8")),
    )


def docker_socket_candidates(settings: Settings) -> list[str]:
    """Engine API endpoints to try, most specific first: DOCKER_HOST, the project-owned podman
    socket, then a Docker daemon's usual socket."""
    urls = []
    if settings.docker_host:
        urls.append(settings.docker_host)
    urls.append(f"unix://{settings.run_dir / 'podman.sock'}")
    urls.append("unix:///var/run/docker.sock")
    return urls
