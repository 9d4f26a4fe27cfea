"""automatic conflicts at arrival: conflicts.subject_id names the accused person whose name
matched the staff account (the proposed link, issue 13 point 5)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conflicts") as batch_op:
        batch_op.add_column(sa.Column("subject_id", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            "fk_conflicts_subject_id_subjects", "subjects", ["subject_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("conflicts") as batch_op:
        batch_op.drop_constraint("fk_conflicts_subject_id_subjects", type_="foreignkey")
        batch_op.drop_column("subject_id")
