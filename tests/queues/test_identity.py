"""A database's own id (migration 0021, queues.identity): made afresh for each new database, kept by
a backup of it; and the claim that ties a draft from before drafts were kept per database to it."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from queues.identity import LEGACY_CALL_WINDOW, LEGACY_CLAIM_WINDOW, claimed_here, database_id
from queues.store.db import make_engine, session_factory, transaction, upgrade
from queues.store.models import AuditEvent
from tests.cli import cheap_passwords
from tests.conftest import NOW
from tests.console.test_audit_cli import AGENT_PASSWORD, make_site


def _id_of(url: str) -> str:
    engine = make_engine(url)
    try:
        upgrade(engine)
        with session_factory(engine)() as session:
            return database_id(session)
    finally:
        engine.dispose()


@pytest.mark.empty_database  # its id made by the migration, not by the tests' copy
def test_each_new_database_has_its_own_id_and_a_backup_keeps_it(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions() as session:
        first = database_id(session)
    assert str(uuid.UUID(first)) == first
    assert _id_of(f"sqlite:///{tmp_path / 'another.db'}") != first
    if engine.dialect.name == "sqlite":  # a backup restored elsewhere is the same data
        source = engine.url.database
        assert source is not None
        with sqlite3.connect(source) as live, sqlite3.connect(tmp_path / "backup.db") as copy:
            live.backup(copy)
        assert _id_of(f"sqlite:///{tmp_path / 'backup.db'}") == first


def test_a_claim_ties_a_draft_to_this_database_only_within_its_window(
    sessions: sessionmaker[Session],
) -> None:
    claimed_at = NOW - timedelta(hours=2)
    with transaction(sessions) as session:
        session.add(AuditEvent(at=claimed_at, user_id=3, action="claim", patient_id=7, detail={}))
        session.add(AuditEvent(at=claimed_at, user_id=3, action="login", patient_id=8, detail={}))
    with sessions() as session:

        def here(user_id: int, patient_id: int, written: timedelta) -> bool:
            return claimed_here(
                session, user_id=user_id, patient_id=patient_id, written_at=claimed_at + written
            )

        assert here(3, 7, timedelta(minutes=20))  # typed twenty minutes into the call
        assert not here(4, 7, timedelta(minutes=20))  # another user's claim is not hers
        assert not here(3, 8, timedelta(minutes=20))  # no claim of that patient (a sign-in)
        assert not here(3, 7, LEGACY_CLAIM_WINDOW + timedelta(minutes=1))  # another day's draft
        assert not here(3, 7, -timedelta(hours=1))  # written before the claim

        def call(started: timedelta, written: timedelta = timedelta(days=3)) -> bool:
            return claimed_here(
                session,
                user_id=3,
                patient_id=7,
                written_at=claimed_at + written,  # the file written again days later
                started_at=claimed_at + started,
            )

        assert call(timedelta(minutes=10))  # the call it is of began ten minutes into the claim
        assert not call(LEGACY_CALL_WINDOW + timedelta(minutes=1))  # a call long after the claim
        assert not call(-timedelta(hours=1))  # a call before the claim


def test_an_admin_gives_a_copy_its_own_id_and_nobody_else_can(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`outreach db new-id`: only with --yes and only for an admin; the id changes, audited with
    the old and the new one, and `db upgrade` then names the new one."""
    cheap_passwords(monkeypatch)
    site = make_site(db_url, engine, sessions)
    with sessions() as session:
        before = database_id(session)

    refused = site.run("db", "new-id")
    assert refused.returncode == 1
    assert "keeps its id unless you add --yes" in refused.stderr
    agent = site.run("db", "new-id", "--yes", user="al", password=AGENT_PASSWORD)
    assert agent.returncode == 1
    assert "you must be an admin" in agent.stderr
    with sessions() as session:
        assert database_id(session) == before
    assert site.audit_rows("database_new_id") == []

    done = site.run("db", "new-id", "--yes")
    assert done.returncode == 0, done.stderr
    with sessions() as session:
        after = database_id(session)
    assert after != before and str(uuid.UUID(after)) == after
    assert f"database id {before} -> {after}" in done.stdout
    assert f"drafts kept under {before} stay there, never reopened here" in done.stdout
    (row,) = site.audit_rows("database_new_id")
    assert (row.user_id, row.detail) == (site.admin_id, {"old": before, "new": after})
