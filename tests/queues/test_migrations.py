"""One Alembic history for both databases, and it matches the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text

from queues.models import Base


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_reference_codes_are_there_after_upgrade(engine: Engine) -> None:
    with engine.connect() as conn:
        codes = set(conn.execute(text("SELECT code FROM disposition_codes")).scalars())
    assert {"completed", "no_answer", "busy", "wrong_number", "do_not_call"} <= codes
