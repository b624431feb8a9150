"""cloud credentials dashboard users store (docs/web.md)

Revision ID: 0310
Revises: 0304
"""

import sqlalchemy as sa
from alembic import op

revision = "0310"
down_revision = "0304"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_credentials",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("owner_key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("hint", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("owner_key", "label"),
    )
    op.create_index("ix_user_credentials_owner_key", "user_credentials", ["owner_key"])


def downgrade() -> None:
    op.drop_index("ix_user_credentials_owner_key", table_name="user_credentials")
    op.drop_table("user_credentials")
