"""Indexes for the supervisor's monitor: patients not callable now (held or waiting), today's
attempts, pending callbacks. Each one keeps a refresh an index range scan (bench/monitor.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A lease moves available_at to its expiry, so "available later" covers held patients too.
    op.create_index(
        "ix_queue_entries_waiting",
        "queue_entries",
        ["available_at", "pharmacy_id"],
        postgresql_include=["holder_id", "lease_expires_at", "blocked_reason"],
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_attempts_started_at", "attempts", ["started_at"])
    op.create_index(
        "ix_callbacks_pending_due",
        "callbacks",
        ["due_at"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_callbacks_pending_due", table_name="callbacks")
    op.drop_index("ix_attempts_started_at", table_name="attempts")
    op.drop_index("ix_queue_entries_waiting", table_name="queue_entries")
