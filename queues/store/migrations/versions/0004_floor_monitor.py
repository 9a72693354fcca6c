"""What the supervisor's floor view needs: wrap-up save time, blocked reasons, forced log-out.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("recorded_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("queue_entries") as batch:
        batch.add_column(sa.Column("blocked_reason", sa.String(length=48), nullable=True))
    with op.batch_alter_table("agent_states") as batch:
        batch.add_column(sa.Column("logout_requested_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agent_states") as batch:
        batch.drop_column("logout_requested_at")
    with op.batch_alter_table("queue_entries") as batch:
        batch.drop_column("blocked_reason")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("recorded_at")
