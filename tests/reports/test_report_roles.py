"""Who may run the report: supervisors and admins, each for their own pharmacies only; the CLI
signs the user in (OUTREACH_PASSWORD here) and runs nothing for anyone who is not signed in."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from console.cli import main
from queues.auth import authenticate
from queues.reports import ReportNotAllowed, Requester, program_report
from queues.store.db import make_engine, session_factory, transaction, upgrade
from queues.store.models import AuditEvent
from tests.reports.history import END, PASSWORD, START, History, build_history

NOW = datetime(2026, 10, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def history(sessions: sessionmaker[Session]) -> History:
    with transaction(sessions) as session:
        return build_history(session)


def signed_in(sessions: sessionmaker[Session], name: str) -> Requester:
    with transaction(sessions) as session:
        return Requester.of(authenticate(session, name, PASSWORD))


def test_an_agent_cannot_run_a_report(sessions: sessionmaker[Session], history: History) -> None:
    ana = signed_in(sessions, "ana")
    with sessions() as session, pytest.raises(ReportNotAllowed, match="supervisors and admins"):
        program_report(session, ana, "TX1", START, END, NOW)


def test_a_supervisor_sees_only_their_pharmacies(
    sessions: sessionmaker[Session], history: History
) -> None:
    sue = signed_in(sessions, "sue")
    with sessions() as session:
        with pytest.raises(ReportNotAllowed, match="TX2"):
            program_report(session, sue, "TX2", START, END, NOW)
        every = program_report(session, sue, "all", START, END, NOW)
    assert [s.code for s in every.sections] == ["TX1"]
    admin = signed_in(sessions, "ada")
    with sessions() as session:
        both = program_report(session, admin, "all", START, END, NOW)
    assert [s.code for s in both.sections] == ["TX1", "TX2"]


@pytest.fixture
def cli_db(sqlite_url: str) -> str:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with transaction(session_factory(engine)) as session:
        build_history(session)
    engine.dispose()
    return sqlite_url


def run_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, *args: str, password: str = ""
) -> int:
    monkeypatch.chdir(tmp_path)  # var/outreach.log lands in the test's folder
    monkeypatch.delenv("OUTREACH_USER", raising=False)
    monkeypatch.setenv("OUTREACH_PASSWORD", password)
    return main(["report", "--database", url, "--from", "2026-07-01", "--to", "2026-09-28", *args])


def test_cli_supervisor_writes_the_report_and_it_is_audited(
    cli_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "tx1.csv"
    rc = run_cli(
        monkeypatch,
        tmp_path,
        cli_db,
        "--pharmacy",
        "all",
        "--format",
        "csv",
        "--out",
        str(out),
        "--user",
        "sue",
        password=PASSWORD,
    )
    assert rc == 0
    lines = out.read_text().splitlines()
    assert {line.split(",")[0] for line in lines[1:]} == {"TX1"}  # not TX2
    engine = make_engine(cli_db)
    with session_factory(engine)() as session:
        export = session.scalars(select(AuditEvent).where(AuditEvent.action == "export")).one()
    engine.dispose()
    assert export.detail["by"] == "sue" and export.detail["format"] == "csv"


def test_cli_refuses_an_agent_and_a_wrong_password(
    cli_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.pdf"
    args = ("--pharmacy", "TX1", "--format", "pdf", "--out", str(out))
    assert run_cli(monkeypatch, tmp_path, cli_db, *args, password=PASSWORD) == 1
    assert "sign in first" in capsys.readouterr().err  # no one signed in: no report at all
    assert run_cli(monkeypatch, tmp_path, cli_db, *args, "--user", "ana", password=PASSWORD) == 1
    assert "Only supervisors and admins" in capsys.readouterr().err
    assert run_cli(monkeypatch, tmp_path, cli_db, *args, "--user", "sue", password="nope") == 1
    assert "Sign-in failed" in capsys.readouterr().err
    assert not out.exists()
    engine = make_engine(cli_db)
    with session_factory(engine)() as session:
        actions = list(session.scalars(select(AuditEvent.action)))
    engine.dispose()
    assert "export" not in actions and "export_refused" in actions
