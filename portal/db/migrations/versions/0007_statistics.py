"""indexes for statistics (W14, W15)

Every statistics count is over a range of ``cases.received_on`` (rewards: ``proposed_on``);
deadlines are already indexed on ``(met_on, due_on)`` (0003). Measured with
``bench/statistics_bench.py``.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_received_on", "cases", ["received_on"], unique=False)
    op.create_index("ix_rewards_proposed_on", "rewards", ["proposed_on"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_rewards_proposed_on", table_name="rewards")
    op.drop_index("ix_cases_received_on", table_name="cases")
