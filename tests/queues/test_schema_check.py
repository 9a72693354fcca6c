"""Opening a database already at the newest migration costs one query, not Alembic; an older or
empty one is still migrated to the newest, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from queues.store.db import (
    alembic_config,
    at_newest_revision,
    make_engine,
    newest_revision,
    upgrade,
)

pytestmark = pytest.mark.empty_database


def _alembic_head() -> tuple[str, str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    before = script.get_revision(head).down_revision
    assert isinstance(before, str)
    return head, before


def test_the_newest_revision_read_from_the_files_is_alembics_head() -> None:
    assert newest_revision() == _alembic_head()[0]


def test_an_empty_database_is_not_at_the_newest_and_is_migrated(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert not at_newest_revision(engine)
        upgrade(engine)
        assert at_newest_revision(engine)
        with engine.connect() as conn:
            codes = set(conn.execute(text("SELECT code FROM disposition_codes")).scalars())
        assert "no_answer" in codes  # the migrations ran, not only a stamp
    finally:
        engine.dispose()


def test_a_database_one_migration_behind_is_migrated_to_the_newest(db_url: str) -> None:
    head, before = _alembic_head()
    engine = make_engine(db_url)
    try:
        upgrade(engine, before)
        assert not at_newest_revision(engine)
        upgrade(engine)
        with engine.connect() as conn:
            stamped = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        assert stamped == [head]
    finally:
        engine.dispose()
