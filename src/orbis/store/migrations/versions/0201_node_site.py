"""node site, SSH port, jump host and app endpoints (several clouds per infrastructure)

Revision ID: 0201
Revises: 0102
"""

import sqlalchemy as sa
from alembic import op

revision = "0201"
down_revision = "0102"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("site", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("jump", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("ssh_port", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("endpoints", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("endpoints")
        batch.drop_column("ssh_port")
        batch.drop_column("jump")
        batch.drop_column("site")
