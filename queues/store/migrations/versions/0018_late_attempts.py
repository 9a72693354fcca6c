"""An attempt saved after its claim was gone is stored, and marked late.

A wrap-up whose lease ran out while the agent typed, or whose patient a supervisor released, is
still the call it was: it counts against the patient's calling caps and in the reports, and its
follow-up actions go to the pharmacy. `attempts.late` says it was saved without the claim (it left
the queue entry to whoever holds the patient now); every attempt stored before this was on time.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "attempts", sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    op.drop_column("attempts", "late")  # in place (SQLite 3.35+): the triggers stay
