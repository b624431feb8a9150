"""images saved from node disks (IM's disk snapshot, with auto_delete)

Revision ID: 0202
Revises: 0201
"""

import sqlalchemy as sa
from alembic import op

revision = "0202"
down_revision = "0201"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("infrastructure_id", sa.String(length=36),
                  sa.ForeignKey("infrastructures.id", ondelete="CASCADE"), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.Column("disk", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("site", sa.String(length=255), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("auto_delete", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_snapshots_infrastructure_id", "snapshots", ["infrastructure_id"])


def downgrade() -> None:
    op.drop_index("ix_snapshots_infrastructure_id", table_name="snapshots")
    op.drop_table("snapshots")
