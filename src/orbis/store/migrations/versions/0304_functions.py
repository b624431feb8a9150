"""functions: what each infrastructure made on OSCAR or AWS Lambda (engine/functions.py)

Revision ID: 0304
Revises: 0303
"""

import sqlalchemy as sa
from alembic import op

revision = "0304"
down_revision = "0303"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "functions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("infrastructure_id", sa.String(length=36),
                  sa.ForeignKey("infrastructures.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("backend", sa.String(length=16), nullable=False),
        sa.Column("site", sa.String(length=255), nullable=False),
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("infrastructure_id", "name"),
    )
    op.create_index("ix_functions_infrastructure_id", "functions", ["infrastructure_id"])


def downgrade() -> None:
    op.drop_index("ix_functions_infrastructure_id", table_name="functions")
    op.drop_table("functions")
