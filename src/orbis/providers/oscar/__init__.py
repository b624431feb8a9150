"""OSCAR services: the FDL an Orbis function becomes (fdl.py) and the REST client (client.py)."""

from orbis.providers.oscar.client import (
    OscarAuthError,
    OscarClient,
    OscarError,
    OscarNotFound,
    OscarTarget,
)
from orbis.providers.oscar.fdl import FdlError, service_definition, spec_digest

__all__ = [
    "FdlError",
    "OscarAuthError",
    "OscarClient",
    "OscarError",
    "OscarNotFound",
    "OscarTarget",
    "service_definition",
    "spec_digest",
]
