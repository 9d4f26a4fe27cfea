"""staff notifications: preferences, batches and sent log (issue 7)

Revision ID: 0006
Revises: 0005

Preferences live in ``users.notify_prefs`` (0001). New here: the notifier's cursors, the
pending/sent notices, the duty roster and the reporters' sealed "tell me" addresses. The
cursors start at the current end of case_events and audit_log, so an upgraded installation
is not flooded with notices about its past.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    cursors = op.create_table(
        "notify_cursors",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "notify_notices",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=True),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("batch", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("sent_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notify_notices_user_id", "notify_notices", ["user_id"])
    op.create_index("ix_notify_notices_case_id", "notify_notices", ["case_id"])
    op.create_index("ix_notify_notices_status_user", "notify_notices", ["status", "user_id"])
    op.create_table(
        "duty_roster",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("set_by", sa.String(length=32), nullable=True),
        sa.Column("set_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["set_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "reporter_contacts",
        sa.Column("receipt_id", sa.String(length=32), nullable=False),
        sa.Column("sealed_address", sa.LargeBinary(), nullable=False),
        sa.Column("added_on", sa.Date(), nullable=False),
        sa.Column("news_on", sa.Date(), nullable=True),
        sa.Column("notified_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["receipt_id"], ["receipts.id"]),
        sa.PrimaryKeyConstraint("receipt_id"),
    )
    bind = op.get_bind()
    last_event = bind.execute(sa.text("SELECT coalesce(max(id), 0) FROM case_events")).scalar()
    last_audit = bind.execute(sa.text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar()
    op.bulk_insert(
        cursors,
        [
            {"name": "events", "last_id": int(last_event or 0), "at": None},
            {"name": "audit", "last_id": int(last_audit or 0), "at": None},
        ],
    )


def downgrade() -> None:
    op.drop_table("reporter_contacts")
    op.drop_table("duty_roster")
    op.drop_index("ix_notify_notices_status_user", table_name="notify_notices")
    op.drop_index("ix_notify_notices_case_id", table_name="notify_notices")
    op.drop_index("ix_notify_notices_user_id", table_name="notify_notices")
    op.drop_table("notify_notices")
    op.drop_table("notify_cursors")
