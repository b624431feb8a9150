"""The migrations build exactly the schema the models describe (a missing or mistyped column
in a migration would only show on an upgraded database otherwise)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from orbis.store.db import make_engine, migrate
from orbis.store.schema import Base


def test_migrated_database_matches_the_models(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
