"""an index in the order the workspace lists cases (urgent, received_on, number)

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_list_order", "cases", ["urgent", "received_on", "number"])


def downgrade() -> None:
    op.drop_index("ix_cases_list_order", table_name="cases")
