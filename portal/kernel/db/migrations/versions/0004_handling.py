"""investigation plans, handling plans and approval (W6-W9)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "investigation_steps",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("done_on", sa.Date(), nullable=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("investigation_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_investigation_steps_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_investigation_steps_owner_id"), ["owner_id"], unique=False
        )

    op.create_table(
        "handling_plans",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("author_id", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sealed_decision", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "version"),
    )
    with op.batch_alter_table("handling_plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_handling_plans_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("handling_plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handling_plans_case_id"))
    op.drop_table("handling_plans")
    with op.batch_alter_table("investigation_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_investigation_steps_owner_id"))
        batch_op.drop_index(batch_op.f("ix_investigation_steps_case_id"))
    op.drop_table("investigation_steps")
