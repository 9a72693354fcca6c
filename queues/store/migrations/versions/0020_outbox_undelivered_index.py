"""Outbox: a partial index of the actions still to send, in id order, for the deliverer's claim.

The claim used to read every action its pharmacies ever had, delivered or not (the
`(pharmacy_id, created_at)` index, then a sort by id): 2 ms at 200 actions, 18 ms at 10,000. With
this index it walks only pending and retrying rows, oldest first, and stops at its batch.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

UNDELIVERED_ACTIONS = "status IN ('pending', 'retrying')"


def upgrade() -> None:
    op.create_index(
        "ix_follow_up_actions_undelivered",
        "follow_up_actions",
        ["id"],
        postgresql_where=sa.text(UNDELIVERED_ACTIONS),
        sqlite_where=sa.text(UNDELIVERED_ACTIONS),
    )


def downgrade() -> None:
    op.drop_index("ix_follow_up_actions_undelivered", table_name="follow_up_actions")
