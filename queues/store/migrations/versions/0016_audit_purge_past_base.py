"""The audit log may lose its oldest rows, and only those: a row at or before the chain's base.

`outreach audit purge` (queues.audit.purge) moves each chain's base (audit_chain.base_seq, on the
row of the row's own chain) past the rows older than the retention period, then deletes them, in
one transaction. The append-only
guard still refuses every UPDATE of a sealed row and every DELETE of a row the chain keeps; a
row the base has passed is no longer in the chain, so deleting it changes nothing `verify` checks.
Moving the base by hand (with no purge on record) is reported by `verify` as rows deleted.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_MESSAGE = "audit_events is append-only"
_PG_GUARD = (
    "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN "
    "IF TG_OP = 'DELETE' AND OLD.seq IS NOT NULL "
    "AND OLD.seq <= (SELECT base_seq FROM audit_chain WHERE id = OLD.chain) THEN RETURN OLD; END IF; "
    f"RAISE EXCEPTION '{_MESSAGE}'; END $$"
)
_PG_GUARD_BEFORE = (
    "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN RAISE EXCEPTION '{_MESSAGE}'; END $$"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD)
        return
    op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    op.execute(
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        "WHEN OLD.seq IS NULL OR OLD.chain IS NULL "
        "OR OLD.seq > coalesce((SELECT base_seq FROM audit_chain WHERE id = OLD.chain), 0) "
        f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD_BEFORE)
        return
    op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    op.execute(
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
    )
