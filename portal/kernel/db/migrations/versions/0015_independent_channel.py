"""the independent channel: cases.independent marks a report about the 法审风控中心 or its
staff, read by independent reviewers only (issue 18)

Revision ID: 0015
Revises: 0014 (written on 0010; re-chained after main gained 0011 and 0014)
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


# A plain ADD COLUMN, never a batch copy of ``cases``: on SQLite a batch operation rebuilds the
# table and would drop the statistics triggers on it (migration 0007).
def upgrade() -> None:
    op.add_column(
        "cases",
        sa.Column("independent", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("cases", "independent")
