"""the cloud sites each infrastructure was prepared at (cleaned on destroy)

Revision ID: 0203
Revises: 0202
"""

import sqlalchemy as sa
from alembic import op

revision = "0203"
down_revision = "0202"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_uses",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("infrastructure_id", sa.String(length=36),
                  sa.ForeignKey("infrastructures.id", ondelete="CASCADE"), nullable=False),
        sa.Column("site", sa.String(length=255), nullable=False),
        sa.UniqueConstraint("infrastructure_id", "site"),
    )
    op.create_index("ix_site_uses_infrastructure_id", "site_uses", ["infrastructure_id"])


def downgrade() -> None:
    op.drop_index("ix_site_uses_infrastructure_id", table_name="site_uses")
    op.drop_table("site_uses")
