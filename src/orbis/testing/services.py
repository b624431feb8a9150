"""A started OrbisService on the simulated cloud, for tests that drive the service directly
(functions, imports, placement) rather than through HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from cryptography.fernet import Fernet

from orbis.providers.sim import SimProvider
from orbis.secrets import Sealer
from orbis.service import OrbisService
from orbis.store.repository import Store


@asynccontextmanager
async def sim_service(home: Path) -> AsyncIterator[OrbisService]:
    """An OrbisService with its SQLite store, simulated cloud and work folder under `home`,
    credentials sealed with a fresh key; resumed on entry, shut down on leaving."""
    svc = OrbisService(Store(f"sqlite:///{home / 'orbis.db'}"), SimProvider(home / "sim"),
                       home / "work")  # fmt: skip
    svc.configure_access(Sealer(Fernet.generate_key()))
    await svc.resume()
    try:
        yield svc
    finally:
        await svc.shutdown()
