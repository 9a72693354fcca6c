"""Shared fixtures: real databases (an SQLite file; PostgreSQL when OUTREACH_TEST_DATABASE_URL is set).

Under CI=true a test that needs PostgreSQL fails instead of skipping.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime, time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, insert, make_url, select, text
from sqlalchemy.orm import Session, sessionmaker

from queues.store.db import make_engine, session_factory, upgrade

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(what: str, available: bool, how: str) -> None:
    """Skip locally with a reason; under CI=true a missing service is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true: {how}")
    pytest.skip(f"{what} not available: {how}")


# Argon2 at the product's cost (queues.auth: 64 MiB, 3 passes, 4 lanes) is ~0.13 s a hash and as
# much a sign-in on a quiet machine, several times that with the suite's workers on two cores, and
# the suite makes hundreds (each world's users, each sign-in). Tests whose point is not the hash
# use argon2id at its lowest cost, as Django's test settings do (the hash stays argon2id and is
# verified for real); tests/queues/test_auth.py checks the product's parameters and keeps them,
# as does any test marked `product_password_cost`.
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "product_password_cost: argon2 at the product's cost (not the tests' cheap one)"
    )
    config.addinivalue_line(
        "markers", "empty_database: the test's database is not migrated (tests of the migrations)"
    )


@pytest.fixture(autouse=True)
def _cheap_passwords(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("product_password_cost") is not None:
        return
    import argon2

    from queues import auth

    monkeypatch.setattr(
        auth, "_hasher", argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


# A test's database is already at the newest migration: a copy of one migrated once per worker (a
# file copy on SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL) with an identity of its own, as
# each migrated database has (migration 0021). Migrating afresh took 0.16-0.6 s a test, several
# times that under the suite's load, over some 600 tests. A test of the migrations themselves asks
# for an empty database with the `empty_database` marker.
def _wants_migrated(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("empty_database") is None


def _fresh_identity() -> dict[str, str]:
    return {"id": str(uuid.uuid4())}


_migrated_sqlite: Path | None = None


def migrated_sqlite() -> Path:
    """This process's SQLite file at the newest migration (made on first use), to be copied."""
    global _migrated_sqlite
    if _migrated_sqlite is None:
        folder = Path(tempfile.mkdtemp(prefix="outreach-migrated-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / "outreach.db"
        eng = make_engine(f"sqlite:///{path}")
        upgrade(eng)
        eng.dispose()
        with closing(sqlite3.connect(path)) as conn:  # everything in the file the tests copy
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _migrated_sqlite = path
    return _migrated_sqlite


def copy_migrated(path: Path) -> str:
    """A new SQLite database at `path`, at the newest migration (a copy of this process's
    migrated file) with an identity of its own; its URL."""
    shutil.copyfile(migrated_sqlite(), path)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE database_identity SET database_id = :id", _fresh_identity())
    return f"sqlite:///{path}"


def migrated_if_new(url: str) -> str:
    """`url`, whose SQLite file, if it is not there yet, is made a copy of the migrated one
    (`copy_migrated`); any other database as it is."""
    file = make_url(url).database if url.startswith("sqlite:///") else None
    if file and not Path(file).exists():
        copy_migrated(Path(file))
    return url


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[str]:
    base = os.environ.get("OUTREACH_TEST_DATABASE_URL", "")
    require_service("PostgreSQL", bool(base), "set OUTREACH_TEST_DATABASE_URL (see .ci/run)")
    name = f"tmpl_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        eng = make_engine(make_url(base).set(database=name).render_as_string(hide_password=False))
        upgrade(eng)
        eng.dispose()  # a template is copied only while nobody is connected to it
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    path = tmp_path / "outreach.db"
    if _wants_migrated(request):
        return copy_migrated(path)
    return f"sqlite:///{path}"


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    base = os.environ.get("OUTREACH_TEST_DATABASE_URL", "")
    require_service("PostgreSQL", bool(base), "set OUTREACH_TEST_DATABASE_URL (see .ci/run)")
    name = f"t_{uuid.uuid4().hex[:12]}"
    migrated = _wants_migrated(request)
    template = f' TEMPLATE "{request.getfixturevalue("_pg_template")}"' if migrated else ""
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
    url = make_url(base).set(database=name)
    if migrated:
        libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute("UPDATE database_identity SET database_id = %(id)s", _fresh_identity())
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Both backends: the same test runs on an SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url, pool_size=20)
    upgrade(eng)  # a read of its revision, unless the test asked for an empty database
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Chicago


def add_pharmacy(
    session: Session, code: str = "TX1", tz: str = "America/Chicago", state: str = "TX"
) -> int:
    from queues.store.models import Pharmacy

    ph = Pharmacy(
        code=code,
        name=f"{code} Pharmacy",
        caller_id="+12145550100",
        callback_number="+12145550101",
        timezone=tz,
        state=state,
        opens_at=time(8),
        closes_at=time(20),
        priority=0,
    )
    session.add(ph)
    session.flush()
    return ph.id


def add_queue(session: Session, pharmacy_id: int, n: int, now: datetime = NOW) -> list[int]:
    """n patients, each with one open refill task and a queue entry (ordered by run-out)."""
    from queues.store.models import Campaign, Patient, QueueEntry, Task

    camp = Campaign(
        pharmacy_id=pharmacy_id,
        kind="refill_reminder",
        name="Refill reminders",
        script_id="refill_reminder",
        weight=1.0,
        attempt_limit=3,
    )
    session.add(camp)
    session.flush()
    tag = uuid.uuid4().hex[:8]
    session.execute(
        insert(Patient),
        [
            dict(
                pharmacy_id=pharmacy_id,
                mrn=f"{tag}-{k}",
                first_name="Test",
                last_name=f"P{k}",
                birth_date=date(1950, 1, 1),
                language="en",
                zip_code="75201",
                state="TX",
                caregiver_authorized=False,
                do_not_call=False,
                deceased=False,
                med_sync_enrolled=False,
                tobacco_use=False,
                hospice=False,
                esrd=False,
            )
            for k in range(n)
        ],
    )
    ids = list(
        session.scalars(select(Patient.id).where(Patient.mrn.like(f"{tag}-%")).order_by(Patient.id))
    )
    session.execute(
        insert(Task),
        [
            dict(
                patient_id=i,
                campaign_id=camp.id,
                subject=f"rx:{i}",
                reason="Refill due",
                status="open",
                due_on=date(2026, 12, 3),
                priority_parts={},
                created_at=now,
            )
            for i in ids
        ],
    )
    from queues.store.models import Phone

    session.execute(
        insert(Phone),
        [
            dict(
                patient_id=i,
                number=f"+1214555{k % 10000:04d}",
                kind="mobile",
                rank=0,
                wrong_number=False,
                do_not_call=False,
            )
            for k, i in enumerate(ids)
        ],
    )
    session.execute(
        insert(QueueEntry),
        [
            dict(
                patient_id=i,
                pharmacy_id=pharmacy_id,
                status="open",
                sort_key=float(k),
                available_at=now,
            )
            for k, i in enumerate(ids)
        ],
    )
    return ids
