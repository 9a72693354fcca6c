"""One Alembic history for both databases, and it matches the models exactly."""

from __future__ import annotations

from datetime import datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from queues.store.db import alembic_config, make_engine, upgrade
from queues.store.models import Base


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        if engine.dialect.name == "postgresql":
            # Not compared by Alembic: the build's keys in byte order (migration 0011, models).
            collations: dict[str, str] = dict(
                conn.execute(
                    text(
                        "SELECT column_name, collation_name FROM information_schema.columns "
                        "WHERE table_name = 'tasks' AND column_name IN ('subject', 'status')"
                    )
                ).all()
            )
            assert collations == {"subject": "C", "status": "C"}
            created = Base.metadata.tables["tasks"].c.subject.type.compile(dialect=engine.dialect)
            assert created.endswith('COLLATE "C"')


def test_reference_codes_are_there_after_upgrade(engine: Engine) -> None:
    with engine.connect() as conn:
        codes = set(conn.execute(text("SELECT code FROM disposition_codes")).scalars())
    assert {"completed", "no_answer", "busy", "wrong_number", "do_not_call"} <= codes


def downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def audit(engine: Engine, action: str, user_id: int | None, patient_id: int | None) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_events (at, user_id, action, patient_id, detail) "
                "VALUES (:at, :user, :action, :patient, '{}')"
            ),
            {
                "at": datetime(2026, 11, 30, 9, 0),
                "user": user_id,
                "action": action,
                "patient": patient_id,
            },
        )


def _refused(engine: Engine, statement: str) -> bool:
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    except DBAPIError:
        return True
    return False


def test_the_audit_log_keeps_its_rows_and_stays_append_only_across_migration_0010(
    db_url: str,
) -> None:
    # 0010 drops the audit log's foreign keys; on SQLite that rebuilds the table, which must
    # keep every row and the append-only triggers. (The claim's audit trigger, set aside and put
    # back by the rebuild, is checked by test_claimer's one-statement claim, on every new file.)
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0009")
        audit(engine, "login", None, None)
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT action FROM audit_events")).scalars().all() == [
                "login"
            ]
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert _refused(engine, "UPDATE audit_events SET action = 'edited'")
        assert _refused(engine, "DELETE FROM audit_events")
        # And back: 0009's schema, with the rows and the append-only rule; then forward again.
        downgrade(engine, "0009")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 1
        assert _refused(engine, "DELETE FROM audit_events")
        upgrade(engine)
        # An audit row may name a user and patient the database does not hold (no foreign key).
        audit(engine, "view_patient", 999, 999)
        assert _refused(engine, "DELETE FROM audit_events")
    finally:
        engine.dispose()
