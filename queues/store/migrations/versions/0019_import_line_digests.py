"""Imports: a row written from a CSV line keeps that line's digest, so the nightly re-import of a
whole export recognises the lines it already stored without reading them again.

`source_digest` is a 64-bit digest of the line as the file gave it (with the header, the kind of
file and what else decides what the line stores: queues.imports.digests); NULL for rows written
from any other source (FHIR, the demo, by hand) or changed since by one. Columns are added in place
(no table rebuild on SQLite, so the triggers of migrations 0009 and 0013 stay as they are).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

DIGESTED = ("patients", "phones", "prescriptions", "fills")


def upgrade() -> None:
    for table in DIGESTED:
        op.add_column(table, sa.Column("source_digest", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    for table in reversed(DIGESTED):
        op.drop_column(table, "source_digest")  # in place (SQLite 3.35+): the triggers stay
