"""the keyring binding: a fingerprint of the installation's keyring (C7)

Revision ID: 0009
Revises: 0008

One row, written by `portal init` (and, for an installation set up before this release, by its
next `portal init` or `portal migrate`): the code that knows the keyring records it, not this
migration.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keyring_binding",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("recorded_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("keyring_binding")
