"""Held patients leave the monitor's waiting index; the holder index keeps only them.

Every claim moved its row's `available_at` entry in ix_queue_entries_waiting to the lease's
expiry (every heartbeat moved it again), and swapped the row's NULL entry in
ix_queue_entries_holder for its holder's: on SQLite pages of the WAL every claim writes, so more of
its commits crossed the 1,000-page checkpoint (bench/README.md, "Claim next patient"). Now:
- ix_queue_entries_waiting: open rows nobody holds (`holder_id IS NULL`); a claim deletes its
  entry. Rows called and waiting for their retry or callback time (holder cleared) stay in it;
- ix_queue_entries_holder: held rows only (`holder_id IS NOT NULL`); every lookup is by a holder.
The monitor reads waiting rows through the first and held ones (one per agent) through the second.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

NOT_HELD = "status = 'open' AND holder_id IS NULL"
HELD = "holder_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_queue_entries_waiting", table_name="queue_entries")
    op.create_index(
        "ix_queue_entries_waiting",
        "queue_entries",
        ["available_at", "pharmacy_id"],
        postgresql_include=["blocked_reason"],
        postgresql_where=sa.text(NOT_HELD),
        sqlite_where=sa.text(NOT_HELD),
    )
    op.drop_index("ix_queue_entries_holder", table_name="queue_entries")
    op.create_index(
        "ix_queue_entries_holder",
        "queue_entries",
        ["holder_id"],
        postgresql_where=sa.text(HELD),
        sqlite_where=sa.text(HELD),
    )


def downgrade() -> None:
    op.drop_index("ix_queue_entries_holder", table_name="queue_entries")
    op.create_index("ix_queue_entries_holder", "queue_entries", ["holder_id"])
    op.drop_index("ix_queue_entries_waiting", table_name="queue_entries")
    op.create_index(
        "ix_queue_entries_waiting",
        "queue_entries",
        ["available_at", "pharmacy_id"],
        postgresql_include=["holder_id", "lease_expires_at", "blocked_reason"],
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    )
