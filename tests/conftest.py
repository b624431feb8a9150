"""Fixtures for every test: the database a store test runs on.

`db_url` runs a test once per supported database: SQLite (a file in the test's folder),
PostgreSQL and MariaDB (one throw-away database per server for the session, emptied before each
test, dropped at the end; see orbis.testing.databases). ORBIS_TEST_DATABASES narrows the list
(e.g. "sqlite" on a machine without the servers); by default a missing server fails the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from orbis.testing.databases import KINDS, DatabaseUnavailable, create_database, drop_database
from orbis.testing.databases import empty_database as _empty

SELECTED = [k.strip() for k in os.environ.get("ORBIS_TEST_DATABASES", ",".join(KINDS)).split(",")
            if k.strip()]  # fmt: skip


class _Servers:
    """The session's databases, made on first use."""

    def __init__(self) -> None:
        self.urls: dict[str, str] = {}
        self.migrated: set[str] = set()

    def url(self, kind: str) -> str:
        if kind not in self.urls:
            try:
                self.urls[kind] = create_database(kind)
            except DatabaseUnavailable as exc:
                pytest.fail(str(exc), pytrace=False)
        return self.urls[kind]


@pytest.fixture(scope="session")
def database_servers() -> Iterator[_Servers]:
    servers = _Servers()
    yield servers
    for url in servers.urls.values():
        drop_database(url)


@pytest.fixture(params=SELECTED)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, database_servers: _Servers) -> str:
    """A database URL with no rows in it (the schema may already be there)."""
    kind = request.param
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'orbis.db'}"
    url = database_servers.url(kind)
    _empty(url)
    return url

