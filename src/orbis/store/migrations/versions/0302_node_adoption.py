"""node adoption: whether an imported node's provider resource was adopted or left detached

Revision ID: 0302
Revises: 0203
"""

import sqlalchemy as sa
from alembic import op

revision = "0302"
down_revision = "0301"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("adoption", sa.String(length=16), nullable=False,
                                   server_default=""))  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("adoption")
