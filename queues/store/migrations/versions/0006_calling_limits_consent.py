"""Calling compliance: a pharmacy's own (tighter) calling limits, and a patient's consent to calls.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pharmacies") as batch:
        batch.add_column(sa.Column("calling_limits", sa.JSON(), nullable=True))
    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column("consent_to_call", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        batch.drop_column("consent_to_call")
    with op.batch_alter_table("pharmacies") as batch:
        batch.drop_column("calling_limits")
