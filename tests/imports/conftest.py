"""An empty site with one pharmacy and the campaigns every pharmacy shares, on both backends."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from console.cli import main
from queues.auth import hash_password
from queues.store.models import (
    Campaign,
    Condition,
    Fill,
    Immunization,
    Patient,
    Phone,
    Prescription,
    Task,
    User,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "fhir-bulk-10-patients"
NOW_ISO = "2026-12-02T16:00:00+00:00"
KINDS = ("refill_reminder", "adherence", "vaccine", "diabetes_education", "smoking_cessation")


ADMIN, ADMIN_PASSWORD = "root", "root-password-1"


@pytest.fixture
def site(db_url: str, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> str:
    """The site's admin signed in (OUTREACH_USER, OUTREACH_PASSWORD) for the test's commands,
    `outreach pharmacy add` through the CLI, then campaigns for every pharmacy."""
    with sessions.begin() as s:
        s.add(
            User(
                username=ADMIN,
                display_name="Root",
                role="admin",
                password_hash=hash_password(ADMIN_PASSWORD),
            )
        )
    monkeypatch.setenv("OUTREACH_USER", ADMIN)
    monkeypatch.setenv("OUTREACH_PASSWORD", ADMIN_PASSWORD)
    rc = main(
        [
            "pharmacy", "add", "KS1", "--name", "Kansas One", "--timezone", "America/Chicago",
            "--caller-id", "+13165550100", "--database", db_url,
        ]
    )  # fmt: skip
    assert rc == 0
    with sessions.begin() as s:
        for kind in KINDS:
            s.add(Campaign(pharmacy_id=None, kind=kind, name=kind, script_id=kind, weight=1.0))
    return db_url


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """Run `outreach ARGV --json`; its last line, parsed."""
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result: dict[str, Any] = json.loads(out[-1])
    return result


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            m.__tablename__: conn.execute(select(func.count()).select_from(m)).scalar_one()
            for m in (Patient, Phone, Prescription, Fill, Condition, Immunization, Task)
        }


def snapshot(engine: Engine) -> list[tuple[Any, ...]]:
    """Every imported row's values, to see that nothing moved."""
    rows: list[tuple[Any, ...]] = []
    with engine.connect() as conn:
        for model in (Patient, Phone, Prescription, Fill, Condition, Immunization, Task):
            rows.extend(tuple(r) for r in conn.execute(select(model.__table__).order_by("id")))
    return rows


Writer = Callable[[str, str], Path]


@contextmanager
def writes(engine: Engine) -> Iterator[list[str]]:
    """The statements that write to a pharmacy's patients, phones, prescriptions or fills while
    the block runs (a re-import that changes nothing writes none)."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        head = statement.lstrip().split(None, 1)
        tables = ("patients", "phones", "prescriptions", "fills")
        if head and head[0].upper() in ("INSERT", "UPDATE", "DELETE", "COPY"):
            seen.extend([statement] if any(t in statement for t in tables) else [])

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
