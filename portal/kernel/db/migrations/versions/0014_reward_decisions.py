"""reward decisions: each approver's decision with its sealed opinion; the number of approvals
depends on the amount (issue 16 point 6)

Revision ID: 0014
Revises: 0011 (0010 on the branch; chained after main's 0011 at the merge)
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reward_decisions",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("reward_id", sa.String(length=32), sa.ForeignKey("rewards.id"), nullable=False),
        sa.Column("case_id", sa.String(length=32), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("decider_id", sa.String(length=32), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("approve", sa.Boolean(), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("proposal_round", sa.Integer(), nullable=False),
        sa.Column("sealed_opinion", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_reward_decisions_reward_id", "reward_decisions", ["reward_id"])
    op.create_index("ix_reward_decisions_case_id", "reward_decisions", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_reward_decisions_case_id", table_name="reward_decisions")
    op.drop_index("ix_reward_decisions_reward_id", table_name="reward_decisions")
    op.drop_table("reward_decisions")
