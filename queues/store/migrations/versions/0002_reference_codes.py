"""Reference codes every site starts with: dispositions and their effects, pause codes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
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
pauses = sa.table(
    "pause_codes", sa.column("code", sa.String), sa.column("label", sa.String),
    sa.column("paid", sa.Boolean),
)

# code, label, effect, reached, requires_callback, retry_after_minutes
DISPOSITIONS = [
    ("completed", "Reached – call completed", "close", True, False, None),
    ("callback_requested", "Reached – asked for a callback", "callback", True, True, None),
    ("transferred_pharmacist", "Reached – transferred to pharmacist", "close", True, False, None),
    ("refused", "Reached – declined to talk", "close", True, False, None),
    ("do_not_call", "Asked not to be called", "suppress_patient", True, False, None),
    ("voicemail", "Left voicemail", "retry", False, False, 240),
    ("no_answer", "No answer", "retry", False, False, 240),
    ("busy", "Busy", "retry", False, False, 30),
    ("wrong_number", "Wrong number", "suppress_number", False, False, 0),
    ("deceased", "Patient deceased", "suppress_patient", False, False, None),
]
PAUSES = [
    ("break", "Break", True),
    ("lunch", "Lunch", False),
    ("training", "Training", True),
    ("meeting", "Team meeting", True),
    ("technical", "Technical issue", True),
]


def upgrade() -> None:
    op.bulk_insert(
        dispositions,
        [
            dict(code=c, label=lab, effect=e, reached=r, requires_callback=cb,
                 retry_after_minutes=m, sort_order=i)
            for i, (c, lab, e, r, cb, m) in enumerate(DISPOSITIONS)
        ],
    )
    op.bulk_insert(pauses, [dict(code=c, label=lab, paid=p) for c, lab, p in PAUSES])


def downgrade() -> None:
    op.execute("DELETE FROM pause_codes")
    op.execute("DELETE FROM disposition_codes")
