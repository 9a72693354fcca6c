"""A technical line failure is its own disposition: `line_failed`, effect `line_failed`.

A call that never reached the patient's phone (no route, network error, a 5xx, 408 or no answer at
all from the trunk, registration down) is stored as an attempt with this code by the console itself.
It spends none of the patient's contact caps or campaign attempts (the caps and the attempt limits
skip it: queues/compliance/patient.py, queues/claims, queues/outcomes.py) and puts the patient back
in the queue after a short retry.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

dispositions = sa.table(
    "disposition_codes",
    sa.column("code", sa.String),
    sa.column("label", sa.String),
    sa.column("effect", sa.String),
    sa.column("reached", sa.Boolean),
    sa.column("requires_callback", sa.Boolean),
    sa.column("retry_after_minutes", sa.Integer),
    sa.column("sort_order", sa.Integer),
)


def upgrade() -> None:
    op.bulk_insert(
        dispositions,
        [
            dict(
                code="line_failed",
                label="Line failed (nothing reached the patient)",
                effect="line_failed",
                reached=False,
                requires_callback=False,
                retry_after_minutes=5,
                sort_order=100,
            )
        ],
    )


def downgrade() -> None:
    # Refused by the foreign key while attempts carry the code: those rows are never lost quietly.
    op.execute("DELETE FROM disposition_codes WHERE code = 'line_failed'")
