"""One-time tickets that open a served console already signed in (`outreach serve`).

The server signs the browser's user in, then starts `outreach console` with a random ticket in
its environment; only the ticket's SHA-256 is stored here, with the user, the browser's address
(the sign-in source) and a 60-second expiry. The console deletes the row as it signs in: a ticket
works once, and a local user who sets the variable by hand has nothing the table knows.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_tickets",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_console_tickets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_tickets")),
    )


def downgrade() -> None:
    op.drop_table("console_tickets")
