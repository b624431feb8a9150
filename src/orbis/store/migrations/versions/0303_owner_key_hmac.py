"""owner keys become HMAC-SHA256 keyed with the server secret: existing (unsalted sha256) ones
are marked `legacy` and replaced at their owner's next request, since the old value cannot be
recomputed without the password. SSH private keys are sealed at start instead of here: sealing
needs the server secret, which migrations do not have (store/sealing.py).

Revision ID: 0303
Revises: 0203
"""

import sqlalchemy as sa
from alembic import op

revision = "0303"
down_revision = ("0302", "0002")  # also merges the "api" branch, whose owners table it changes
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("owners", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("legacy", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.execute(sa.text("UPDATE owners SET legacy = :yes").bindparams(yes=True))


def downgrade() -> None:
    with op.batch_alter_table("owners", schema=None) as batch_op:
        batch_op.drop_column("legacy")
