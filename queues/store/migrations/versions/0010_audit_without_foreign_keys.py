"""The audit log names users and patients without foreign keys.

An audit row is a record of what happened; it must outlive, and never hold up, the rows it
names. With foreign keys every audit row checked its user and patient on insert — on PostgreSQL
by taking a share lock on both rows, in every claim — and no patient could ever be removed once
viewed (a pharmacy that ends its contract gets its patients' data back or destroyed, while the
audit trail of who saw them stays for its six years). Users and patients are never deleted by
the product, so the ids stay meaningful.

Measured on PostgreSQL, 300,000 open tasks, 50 claimers: the claim went from 1,164–1,185 to
1,830–2,161 claims/s and its p99 from about 1.1 s to 77–89 ms (bench/README.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_FOREIGN_KEYS = {
    "fk_audit_events_user_id_users": ("user_id", "users"),
    "fk_audit_events_patient_id_patients": ("patient_id", "patients"),
}
_SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER audit_events_no_{verb} BEFORE {VERB} ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
)


def _sqlite_append_only() -> None:
    # A rebuilt table loses its triggers: the log stays append-only (migration 0001).
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS audit_events_no_{verb}")
        op.execute(_SQLITE_APPEND_ONLY.format(verb=verb, VERB=verb.upper()))


def _rebuild(change: Callable[[BatchOperations], None]) -> None:
    """PostgreSQL alters the table; SQLite cannot drop a constraint, so batch mode rebuilds it
    (rows and index kept). Other tables' triggers that write to it (the claim's audit row,
    migration 0009) would stop the rebuild's rename: they are set aside and put back as they were."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        with op.batch_alter_table("audit_events") as batch:
            change(batch)
        return
    writers = bind.execute(
        sa.text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            "AND tbl_name <> 'audit_events' AND sql LIKE '%audit_events%'"
        )
    ).all()
    for name, _sql in writers:
        op.execute(f"DROP TRIGGER {name}")
    with op.batch_alter_table("audit_events", recreate="always") as batch:
        change(batch)
    _sqlite_append_only()
    for _name, sql in writers:
        op.execute(sql)


def _drop(batch: BatchOperations) -> None:
    for name in _FOREIGN_KEYS:
        batch.drop_constraint(name, type_="foreignkey")


def _create(batch: BatchOperations) -> None:
    for name, (column, table) in _FOREIGN_KEYS.items():
        batch.create_foreign_key(name, table, [column], ["id"])


def upgrade() -> None:
    _rebuild(_drop)


def downgrade() -> None:
    _rebuild(_create)
