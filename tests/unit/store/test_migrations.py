"""The migrations build exactly the schema the models describe, on every supported database
(a missing or mistyped column in a migration would only show on an upgraded database otherwise),
and a database migrated by a newer Orbis is refused with a clear message."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from orbis.store.db import SchemaError, make_engine, migrate, schema_is_current
from orbis.store.repository import Store
from orbis.store.schema import Base


def test_migrated_database_matches_the_models(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
        assert schema_is_current(conn)
    engine.dispose()
    assert differences == []


def test_a_schema_newer_than_this_orbis_is_refused(db_url):
    Store(db_url).engine.dispose()
    engine = make_engine(db_url)
    with engine.begin() as conn:
        old = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        conn.execute(text("UPDATE alembic_version SET version_num = '9999' "
                          "WHERE version_num = :v"), {"v": max(old)})  # fmt: skip
    try:
        with pytest.raises(SchemaError, match="revision 9999, newer than this Orbis knows"):
            Store(db_url)
        with engine.connect() as conn:
            assert not schema_is_current(conn)
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v "
                              "WHERE version_num = '9999'"), {"v": max(old)})  # fmt: skip
        engine.dispose()
