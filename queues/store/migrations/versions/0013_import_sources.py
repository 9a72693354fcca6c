"""Imports: each imported row keeps its source's identifier, so a re-import updates it in place;
a fill the import worked out itself (no dispense in the source) is marked `estimated`.

`source_id` is the FHIR resource id or the CSV's id column; unique within the parent row (the
patient's, or the prescription's for a fill), NULL for rows made here (the demo, by hand). A
patient's source identifier is its `mrn`, already unique per pharmacy. Columns are added in place
(no table rebuild on SQLite, so the admission triggers of migration 0009 stay as they are).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# (table, parent column) of the rows an import upserts by source identifier.
SOURCED = (
    ("prescriptions", "patient_id"),
    ("fills", "prescription_id"),
    ("conditions", "patient_id"),
    ("immunizations", "patient_id"),
)


def upgrade() -> None:
    op.add_column("patients", sa.Column("gender", sa.String(16), nullable=True))
    op.add_column(
        "fills",
        sa.Column("estimated", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    for table, parent in SOURCED:
        op.add_column(table, sa.Column("source_id", sa.String(64), nullable=True))
        op.create_index(f"uq_{table}_source", table, [parent, "source_id"], unique=True)


def downgrade() -> None:
    for table, _parent in reversed(SOURCED):
        op.drop_index(f"uq_{table}_source", table_name=table)
        op.drop_column(table, "source_id")  # in place (SQLite 3.35+): the triggers stay
    op.drop_column("fills", "estimated")
    op.drop_column("patients", "gender")
