"""workspace notices and confirmed calendar years (issue 16 items 3 and 4)

Revision ID: 0013
Revises: 0014

``notify_notices.read_on``: the workspace lists every notice with an unread count, mail or no
mail. ``duty_roster_set``: whether an administrator has saved a duty roster (until then every
intake officer is on duty). ``calendar_years``: the years whose complete schedule an
administrator confirmed. ``case_deadlines.provisional``: a due date computed on Monday to
Friday because a year it spans is not covered yet.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN, never a batch copy: on SQLite a batch operation recreates the table
    # and would drop the statistics triggers on case_deadlines (0007)
    op.add_column("notify_notices", sa.Column("read_on", sa.Date(), nullable=True))
    op.add_column(
        "case_deadlines",
        sa.Column("provisional", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("confirmed_by", sa.String(length=32), nullable=True),
        sa.Column("confirmed_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["confirmed_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("year"),
    )
    op.create_table(
        "duty_roster_set",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("set_by", sa.String(length=32), nullable=True),
        sa.Column("set_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["set_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    # an installation whose administrator already saved a roster keeps it as it is
    op.execute(
        "INSERT INTO duty_roster_set (id, set_by, set_on) "
        "SELECT 1, NULL, min(set_on) FROM duty_roster HAVING count(*) > 0"
    )


def downgrade() -> None:
    op.drop_table("duty_roster_set")
    op.drop_table("calendar_years")
    op.drop_column("case_deadlines", "provisional")
    op.drop_column("notify_notices", "read_on")
