"""The outbox's delivery state: pending | retrying | delivered | dead | discarded, with the next
try's time, the deliverer's claim on the row, and when it was delivered.

`sent` becomes `delivered` and `failed` becomes `dead` (nothing delivered before this revision;
bench data wrote `sent`). `sent_at` is renamed `delivered_at`. Columns are added and renamed in
place on both databases (SQLite 3.25+ renames a column without rebuilding the table).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE follow_up_actions RENAME COLUMN sent_at TO delivered_at")
    op.add_column("follow_up_actions", sa.Column("next_attempt_at", sa.DateTime(), nullable=True))
    op.add_column("follow_up_actions", sa.Column("claimed_until", sa.DateTime(), nullable=True))
    op.add_column(
        "follow_up_actions", sa.Column("claim_token", sa.String(length=32), nullable=True)
    )
    op.execute("UPDATE follow_up_actions SET status = 'delivered' WHERE status = 'sent'")
    op.execute("UPDATE follow_up_actions SET status = 'dead' WHERE status = 'failed'")
    # The deliverer's question, "what is due now?", and the supervisor's per-pharmacy counts.
    op.create_index(
        "ix_follow_up_actions_status_next", "follow_up_actions", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_follow_up_actions_status_next", table_name="follow_up_actions")
    op.execute("UPDATE follow_up_actions SET status = 'sent' WHERE status = 'delivered'")
    op.execute(
        "UPDATE follow_up_actions SET status = 'failed' WHERE status IN ('dead', 'discarded')"
    )
    op.execute("UPDATE follow_up_actions SET status = 'pending' WHERE status = 'retrying'")
    with op.batch_alter_table("follow_up_actions") as batch:
        batch.drop_column("claim_token")
        batch.drop_column("claimed_until")
        batch.drop_column("next_attempt_at")
    op.execute("ALTER TABLE follow_up_actions RENAME COLUMN delivered_at TO sent_at")
