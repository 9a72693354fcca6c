"""Task scores and success links; queue reservations for "mine" callbacks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("success_attempt_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("score", sa.Float(), nullable=False, server_default="0"))
        batch.create_foreign_key(
            "fk_tasks_success_attempt_id_attempts", "attempts", ["success_attempt_id"], ["id"]
        )
    with op.batch_alter_table("queue_entries") as batch:
        batch.add_column(sa.Column("reserved_for_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reserved_until", sa.DateTime(), nullable=True))
        batch.create_foreign_key(
            "fk_queue_entries_reserved_for_id_users", "users", ["reserved_for_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("queue_entries") as batch:
        batch.drop_constraint("fk_queue_entries_reserved_for_id_users", type_="foreignkey")
        batch.drop_column("reserved_until")
        batch.drop_column("reserved_for_id")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint("fk_tasks_success_attempt_id_attempts", type_="foreignkey")
        batch.drop_column("score")
        batch.drop_column("success_attempt_id")
