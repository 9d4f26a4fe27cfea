"""working-day calendar and stage deadlines (W10, W15)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("is_workday", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("set_by", sa.String(length=32), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["set_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_table(
        "case_deadlines",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=24), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_since", sa.Date(), nullable=True),
        sa.Column("paused_days", sa.Integer(), nullable=False),
        sa.Column("extended", sa.Boolean(), nullable=False),
        sa.Column("extension_days", sa.Integer(), nullable=False),
        sa.Column("extension_status", sa.String(length=12), nullable=True),
        sa.Column("extension_requested_by", sa.String(length=32), nullable=True),
        sa.Column("extension_decided_by", sa.String(length=32), nullable=True),
        sa.Column("extension_message_id", sa.String(length=32), nullable=True),
        sa.Column("sealed_extension_reason", sa.LargeBinary(), nullable=True),
        sa.Column("met_on", sa.Date(), nullable=True),
        sa.Column("handler_id", sa.String(length=32), nullable=True),
        sa.Column("notice_level", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["extension_decided_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["extension_requested_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["handler_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_deadlines", schema=None) as batch_op:
        batch_op.create_index("ix_case_deadlines_case_id", ["case_id"], unique=False)
        batch_op.create_index("ix_case_deadlines_handler_id", ["handler_id"], unique=False)
        batch_op.create_index("ix_case_deadlines_open", ["met_on", "due_on"], unique=False)
    op.create_table(
        "deadline_pauses",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("deadline_id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=24), nullable=False),
        sa.Column("sealed_note", sa.LargeBinary(), nullable=True),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("paused_by", sa.String(length=32), nullable=False),
        sa.Column("resumed_by", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["deadline_id"], ["case_deadlines.id"]),
        sa.ForeignKeyConstraint(["paused_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["resumed_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deadline_pauses", schema=None) as batch_op:
        batch_op.create_index("ix_deadline_pauses_case_id", ["case_id"], unique=False)
        batch_op.create_index("ix_deadline_pauses_deadline_id", ["deadline_id"], unique=False)


def downgrade() -> None:
    op.drop_table("deadline_pauses")
    op.drop_table("case_deadlines")
    op.drop_table("calendar_days")
