"""privacy notice settings, reporter rights requests, identity corrections (issue 18)

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_settings",
        sa.Column("key", sa.String(length=40), primary_key=True),
        sa.Column("value", sa.String(length=2000), nullable=False),
        sa.Column("updated_by", sa.String(length=32), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("updated_on", sa.Date(), nullable=False),
    )
    op.create_table(
        "rights_requests",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("case_id", sa.String(length=32), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column(
            "receipt_id", sa.String(length=32), sa.ForeignKey("receipts.id"), nullable=False
        ),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("asked_on", sa.Date(), nullable=False),
        sa.Column("reply_public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("decided_by", sa.String(length=32), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sealed_reply_key", sa.LargeBinary(), nullable=True),
        sa.Column("sealed_decision", sa.LargeBinary(), nullable=True),
    )
    op.create_index("ix_rights_requests_case_id", "rights_requests", ["case_id"])
    op.create_index("ix_rights_requests_receipt_id", "rights_requests", ["receipt_id"])
    op.create_table(
        "identity_corrections",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("case_id", sa.String(length=32), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("corrected_on", sa.Date(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_identity_corrections_case_id", "identity_corrections", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_identity_corrections_case_id", table_name="identity_corrections")
    op.drop_table("identity_corrections")
    op.drop_index("ix_rights_requests_receipt_id", table_name="rights_requests")
    op.drop_index("ix_rights_requests_case_id", table_name="rights_requests")
    op.drop_table("rights_requests")
    op.drop_table("org_settings")
