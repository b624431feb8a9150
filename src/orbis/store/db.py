"""Database engine, sessions and schema migration (Alembic, run at start-up)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from orbis.store import dialects  # noqa: F401  (MariaDB column types, before any DDL)

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # WAL lets readers (API) go on while the engine writes; FKs for cascades.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if url.startswith(("mysql", "mariadb")):
        # READ COMMITTED as on PostgreSQL: every statement sees what others committed (the
        # default REPEATABLE READ would pin a snapshot per transaction and lock gaps);
        # utf8mb4 so templates and logs keep any character
        return create_engine(url, pool_pre_ping=True, pool_recycle=3600,
                             isolation_level="READ COMMITTED",
                             connect_args={"charset": "utf8mb4"})  # fmt: skip
    return create_engine(url, pool_pre_ping=True)


class SchemaError(RuntimeError):
    """The database's schema is not one this version of Orbis can use."""


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def known_revisions() -> tuple[set[str], set[str]]:
    """(every revision this version ships, the newest ones: its heads)."""
    scripts = ScriptDirectory.from_config(_config())
    return {r.revision for r in scripts.walk_revisions()}, set(scripts.get_heads())


def current_revisions(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())


def check_not_newer(conn: Connection) -> None:
    """Refuse a database migrated by a newer Orbis: its schema may lack nothing we need, but
    we cannot know, and downgrading it under a running newer server would break that one."""
    known, _ = known_revisions()
    unknown = sorted(current_revisions(conn) - known)
    if unknown:
        raise SchemaError(
            f"the database schema is at revision {', '.join(unknown)}, newer than this Orbis "
            f"knows (its newest: {', '.join(sorted(known_revisions()[1]))}); upgrade Orbis on "
            "this machine, or point ORBIS_DB_URL at another database"
        )


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision of every branch. Servers starting together
    on one database take turns (a database lock), so each migration runs once."""
    cfg = _config()
    with engine.begin() as conn:
        _migration_lock(conn)
        try:
            check_not_newer(conn)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")  # branches made side by side are all applied
        finally:
            _migration_unlock(conn)


def schema_is_current(conn: Connection) -> bool:
    return current_revisions(conn) == known_revisions()[1]


def _migration_lock(conn: Connection) -> None:
    dialect = conn.dialect.name
    if dialect == "postgresql":  # held until this transaction ends
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    elif dialect in ("mysql", "mariadb"):  # DDL commits on MariaDB: a session lock instead
        got = conn.execute(text("SELECT GET_LOCK('orbis_migrations', 300)")).scalar()
        if got != 1:
            raise SchemaError("another server held the migration lock for 300 s")


def _migration_unlock(conn: Connection) -> None:
    if conn.dialect.name in ("mysql", "mariadb"):
        conn.execute(text("SELECT RELEASE_LOCK('orbis_migrations')"))


_LOCK_KEY = 0x0B15_0001  # the advisory lock number for migrations


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
