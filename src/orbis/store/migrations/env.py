"""Alembic environment: runs on the connection handed over by orbis.store.db.migrate."""

from alembic import context

from orbis.store.schema import Base

connection = context.config.attributes.get("connection")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite needs batch mode for ALTERs
)
with context.begin_transaction():
    context.run_migrations()
