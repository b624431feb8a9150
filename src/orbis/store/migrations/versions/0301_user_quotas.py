"""per-identity node quotas an administrator sets (docs/limits.md)

Revision ID: 0301
Revises: 0203
"""

import sqlalchemy as sa
from alembic import op

revision = "0301"
down_revision = "0203"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_quotas",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("max_nodes_per_infra", sa.Integer(), nullable=True),
        sa.Column("max_nodes_per_user", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("user_quotas")
