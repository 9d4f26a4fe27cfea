"""rewards, protections, archive and destruction (W11-W13, C5)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rewards",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("recovered_amount", sa.BigInteger(), nullable=False),
        sa.Column("sealed_basis", sa.LargeBinary(), nullable=False),
        sa.Column("proposed_by", sa.String(length=32), nullable=False),
        sa.Column("proposed_on", sa.Date(), nullable=False),
        sa.Column("approver_id", sa.String(length=32), nullable=True),
        sa.Column("approver_on", sa.Date(), nullable=True),
        sa.Column("officer_id", sa.String(length=32), nullable=True),
        sa.Column("officer_on", sa.Date(), nullable=True),
        sa.Column("refused_by", sa.String(length=32), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("sealed_payment", sa.LargeBinary(), nullable=True),
        sa.Column("claimed_on", sa.Date(), nullable=True),
        sa.Column("sealed_claim", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["proposed_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["approver_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["officer_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["refused_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id"),
    )
    op.create_table(
        "protection_plans",
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("monitor_until", sa.Date(), nullable=True),
        sa.Column("updated_by", sa.String(length=32), nullable=False),
        sa.Column("updated_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["updated_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_table(
        "leniency_records",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("party", sa.String(length=12), nullable=False),
        sa.Column("measure", sa.String(length=24), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("granted_by", sa.String(length=32), nullable=False),
        sa.Column("granted_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["granted_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("leniency_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_leniency_records_case_id"), ["case_id"], unique=False)
    op.create_table(
        "archive_records",
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("archived_on", sa.Date(), nullable=False),
        sa.Column("archived_by", sa.String(length=32), nullable=True),
        sa.Column("record_class", sa.String(length=16), nullable=False),
        sa.Column("retain_until", sa.Date(), nullable=False),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("hold_set_by", sa.String(length=32), nullable=True),
        sa.Column("hold_since", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["archived_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["hold_set_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("case_id"),
    )
    with op.batch_alter_table("archive_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_archive_records_retain_until"), ["retain_until"], unique=False
        )
    op.create_table(
        "destruction_approvals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("approver_id", sa.String(length=32), nullable=False),
        sa.Column("approved_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["approver_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "approver_id"),
    )
    with op.batch_alter_table("destruction_approvals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_destruction_approvals_case_id"), ["case_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("destruction_approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_destruction_approvals_case_id"))
    op.drop_table("destruction_approvals")
    with op.batch_alter_table("archive_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_archive_records_retain_until"))
    op.drop_table("archive_records")
    with op.batch_alter_table("leniency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leniency_records_case_id"))
    op.drop_table("leniency_records")
    op.drop_table("protection_plans")
    op.drop_table("rewards")
