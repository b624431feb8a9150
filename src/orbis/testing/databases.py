"""Throw-away databases on the PostgreSQL and MariaDB servers of the machine, for tests.

`make test` runs the store, engine and service tests on SQLite, PostgreSQL and MariaDB. These
machines run both servers (PostgreSQL on 127.0.0.1:5432, user postgres, trust; MariaDB on
127.0.0.1:3306, root without password); other addresses come from ORBIS_TEST_PG_URL and
ORBIS_TEST_MARIADB_URL (a server URL without database). A server that does not answer is a
test failure, never a skip: a store that is not tested is not supported.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

KINDS = ("sqlite", "postgresql", "mariadb")
SERVERS = {
    "postgresql": os.environ.get("ORBIS_TEST_PG_URL",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    "mariadb": os.environ.get("ORBIS_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/"),
}  # fmt: skip


class DatabaseUnavailable(RuntimeError):
    pass


def create_database(kind: str, prefix: str = "orbis_test") -> str:
    """Make an empty database named <prefix>_<random> on the `kind` server; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    server = SERVERS[kind]
    statement = (f"CREATE DATABASE {name}" if kind == "postgresql"
                 else f"CREATE DATABASE {name} CHARACTER SET utf8mb4")  # fmt: skip
    try:
        _admin(server, statement)
    except Exception as exc:  # every driver error: the message must say which server
        raise DatabaseUnavailable(
            f"the {kind} server at {make_url(server).render_as_string()} is needed by the "
            f"tests and did not answer: {exc}"
        ) from exc
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    parsed = make_url(url)
    server = parsed.set(database="postgres" if parsed.get_backend_name() == "postgresql" else "")
    force = " WITH (FORCE)" if parsed.get_backend_name() == "postgresql" else ""
    _admin(server.render_as_string(hide_password=False),
           f"DROP DATABASE IF EXISTS {parsed.database}{force}")  # fmt: skip


def empty_database(url: str) -> None:
    """Delete every row of every table but the schema version (cheaper than a new database)."""
    engine = create_engine(url)
    try:
        tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
        if not tables:
            return
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                conn.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
                for table in tables:
                    conn.execute(text(f"DELETE FROM `{table}`"))
                conn.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
    finally:
        engine.dispose()


def _admin(server_url: str, statement: str) -> None:
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()
