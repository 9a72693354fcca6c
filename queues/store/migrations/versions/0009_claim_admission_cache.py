"""Cached claim-time admission on the queue entry, kept honest by triggers; SQLite audits claims
by trigger.

`admitted_at` is when the last full compliance check found the patient callable, `admitted_until`
when that stops holding (the first of their open windows to close); `admitted_key` names the site
limits it was checked under. The
claim takes a head row with a live admission in one statement and runs the full check only
otherwise (queues.claims.admission). Anything the check reads that changes clears the admission at once,
in the database, so no writer can forget it: the patient's address, flags and consent, their
phones, their attempts, their pharmacy's hours and limits.

On SQLite the claim's audit row is written by a trigger, so a claim is one statement there too
(PostgreSQL writes it in the claim's own statement, a CTE).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UNADMIT = (
    "UPDATE queue_entries SET admitted_until = NULL "
    "WHERE {where} AND admitted_until IS NOT NULL"
)
PATIENT_COLUMNS = ("zip_code", "state", "do_not_call", "deceased", "consent_to_call", "pharmacy_id")
PHARMACY_COLUMNS = ("timezone", "state", "opens_at", "closes_at", "calling_limits")
ATTEMPT_COLUMNS = ("patient_id", "started_at", "call_result", "disposition", "task_ids")


def _changed(columns: tuple[str, ...], sqlite: bool) -> str:
    if sqlite:  # json columns compare as text
        return " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)
    return " OR ".join(
        f"OLD.{c}::text IS DISTINCT FROM NEW.{c}::text" if c in ("calling_limits", "task_ids")
        else f"OLD.{c} IS DISTINCT FROM NEW.{c}"
        for c in columns
    )


def _sqlite_upgrade() -> None:
    # The claim's audit row (wall-clock time, in the format SQLAlchemy stores: 6-digit fraction).
    op.execute(
        "CREATE TRIGGER queue_entries_claim_audit AFTER UPDATE OF claimed_at ON queue_entries "
        "WHEN NEW.claimed_at IS NOT NULL AND OLD.claimed_at IS NULL BEGIN "
        "INSERT INTO audit_events (at, user_id, action, patient_id, detail) VALUES "
        "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000', NEW.holder_id, 'claim', "
        "NEW.patient_id, '{}'); END"
    )
    triggers = {
        "patients_unadmit": (
            f"AFTER UPDATE OF {', '.join(PATIENT_COLUMNS)} ON patients "
            f"WHEN {_changed(PATIENT_COLUMNS, True)}",
            UNADMIT.format(where="patient_id = NEW.id"),
        ),
        "phones_unadmit_insert": (
            "AFTER INSERT ON phones",
            UNADMIT.format(where="patient_id = NEW.patient_id"),
        ),
        "phones_unadmit_update": (
            "AFTER UPDATE ON phones",
            UNADMIT.format(where="patient_id IN (OLD.patient_id, NEW.patient_id)"),
        ),
        "phones_unadmit_delete": (
            "AFTER DELETE ON phones",
            UNADMIT.format(where="patient_id = OLD.patient_id"),
        ),
        "attempts_unadmit_insert": (
            "AFTER INSERT ON attempts",
            UNADMIT.format(where="patient_id = NEW.patient_id"),
        ),
        "attempts_unadmit_update": (
            f"AFTER UPDATE ON attempts WHEN {_changed(ATTEMPT_COLUMNS, True)}",
            UNADMIT.format(where="patient_id IN (OLD.patient_id, NEW.patient_id)"),
        ),
        "pharmacies_unadmit": (
            f"AFTER UPDATE OF {', '.join(PHARMACY_COLUMNS)} ON pharmacies "
            f"WHEN {_changed(PHARMACY_COLUMNS, True)}",
            UNADMIT.format(where="pharmacy_id = NEW.id"),
        ),
    }
    for name, (when, body) in triggers.items():
        op.execute(f"CREATE TRIGGER {name} {when} BEGIN {body}; END")


def _postgres_upgrade() -> None:
    functions = {
        # patients: the entry's key is the patient's id
        "queue_entries_unadmit_patient": UNADMIT.format(where="patient_id = NEW.id"),
        "queue_entries_unadmit_pharmacy": UNADMIT.format(where="pharmacy_id = NEW.id"),
    }
    for name, body in functions.items():
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {body}; RETURN NULL; END $$"
        )
    # phones and attempts: the entry of the row's patient, before and after the change
    op.execute(
        "CREATE FUNCTION queue_entries_unadmit_owner() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "IF TG_OP <> 'INSERT' THEN "
        + UNADMIT.format(where="patient_id = OLD.patient_id")
        + "; END IF; "
        "IF TG_OP <> 'DELETE' THEN "
        + UNADMIT.format(where="patient_id = NEW.patient_id")
        + "; END IF; "
        "RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER patients_unadmit AFTER UPDATE OF {', '.join(PATIENT_COLUMNS)} "
        f"ON patients FOR EACH ROW WHEN ({_changed(PATIENT_COLUMNS, False)}) "
        "EXECUTE FUNCTION queue_entries_unadmit_patient()"
    )
    op.execute(
        f"CREATE TRIGGER pharmacies_unadmit AFTER UPDATE OF {', '.join(PHARMACY_COLUMNS)} "
        f"ON pharmacies FOR EACH ROW WHEN ({_changed(PHARMACY_COLUMNS, False)}) "
        "EXECUTE FUNCTION queue_entries_unadmit_pharmacy()"
    )
    op.execute(
        "CREATE TRIGGER phones_unadmit AFTER INSERT OR UPDATE OR DELETE ON phones "
        "FOR EACH ROW EXECUTE FUNCTION queue_entries_unadmit_owner()"
    )
    op.execute(
        "CREATE TRIGGER attempts_unadmit_insert AFTER INSERT ON attempts "
        "FOR EACH ROW EXECUTE FUNCTION queue_entries_unadmit_owner()"
    )
    op.execute(
        "CREATE TRIGGER attempts_unadmit_update AFTER UPDATE ON attempts FOR EACH ROW "
        f"WHEN ({_changed(ATTEMPT_COLUMNS, False)}) "
        "EXECUTE FUNCTION queue_entries_unadmit_owner()"
    )


def upgrade() -> None:
    with op.batch_alter_table("queue_entries") as batch_op:
        batch_op.add_column(sa.Column("admitted_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("admitted_until", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("admitted_key", sa.String(length=16), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()
    else:
        _postgres_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in (
            "queue_entries_claim_audit",
            "patients_unadmit",
            "phones_unadmit_insert",
            "phones_unadmit_update",
            "phones_unadmit_delete",
            "attempts_unadmit_insert",
            "attempts_unadmit_update",
            "pharmacies_unadmit",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for name, table in (
            ("patients_unadmit", "patients"),
            ("pharmacies_unadmit", "pharmacies"),
            ("phones_unadmit", "phones"),
            ("attempts_unadmit_insert", "attempts"),
            ("attempts_unadmit_update", "attempts"),
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        for fn in (
            "queue_entries_unadmit_patient",
            "queue_entries_unadmit_pharmacy",
            "queue_entries_unadmit_owner",
        ):
            op.execute(f"DROP FUNCTION IF EXISTS {fn}()")
    with op.batch_alter_table("queue_entries") as batch_op:
        batch_op.drop_column("admitted_key")
        batch_op.drop_column("admitted_until")
        batch_op.drop_column("admitted_at")
