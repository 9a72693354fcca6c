"""The database's own identity: one row holding a random id (uuid4) made when this migration runs.

A console keeps its unsaved wrap-ups on local disk under this id (console/drafts.py), so a draft
typed on one database is never reopened, nor saved, on another whose patient merely has the same
row id. The id belongs to the data, not to a URL: the same database reached by another host name,
or a backup restored from it, keeps it; a database made afresh (including `outreach demo --reset`,
which drops and re-creates every table) gets a new one.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    identity = op.create_table(
        "database_identity",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("database_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_database_identity_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_database_identity")),
    )
    op.bulk_insert(
        identity,
        [
            {
                "id": 1,
                "database_id": str(uuid.uuid4()),
                "created_at": datetime.now(UTC).replace(tzinfo=None),
            }
        ],
    )


def downgrade() -> None:
    op.drop_table("database_identity")
