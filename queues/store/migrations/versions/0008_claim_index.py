"""Claimable index without held, just-called or passed-over rows, and the wake index for them.

The claimable index used to hold every open row, so each claim walked past every patient already
held or passed over (quadratic over a shift). Now it holds only rows a claim may take; the others
wait in a small index on `available_at` until queues.claims.claiming's wake step puts them back.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CLAIMABLE = "status = 'open' AND claimed_at IS NULL AND blocked_reason IS NULL"
WAITING_TO_WAKE = "status = 'open' AND (claimed_at IS NOT NULL OR blocked_reason IS NOT NULL)"


def upgrade() -> None:
    op.drop_index("ix_queue_entries_claimable", table_name="queue_entries")
    op.create_index(
        "ix_queue_entries_claimable",
        "queue_entries",
        ["sort_key", "patient_id"],
        postgresql_where=sa.text(CLAIMABLE),
        sqlite_where=sa.text(CLAIMABLE),
    )
    op.create_index(
        "ix_queue_entries_wake",
        "queue_entries",
        ["available_at"],
        postgresql_where=sa.text(WAITING_TO_WAKE),
        sqlite_where=sa.text(WAITING_TO_WAKE),
    )


def downgrade() -> None:
    op.drop_index("ix_queue_entries_wake", table_name="queue_entries")
    op.drop_index("ix_queue_entries_claimable", table_name="queue_entries")
    op.create_index(
        "ix_queue_entries_claimable",
        "queue_entries",
        ["sort_key", "patient_id"],
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    )
