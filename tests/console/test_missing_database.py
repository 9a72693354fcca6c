"""A mistyped SQLite database path: every command but those that make a database (`outreach demo`,
`outreach db upgrade`) refuses a file that is not there — exit 2, the path named, what makes one
said — and creates nothing (no folder, no empty database a later command would take for real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import run

SIGNED_IN = {"OUTREACH_USER": "admin", "OUTREACH_PASSWORD": "admin-demo-1"}


@pytest.mark.parametrize(
    "command",
    [
        ("queue", "stats"),
        ("queue", "build"),
        ("pharmacy", "list"),
        ("import", "fhir", "x.ndjson", "--pharmacy", "KS1"),
        (
            "report",
            "--pharmacy",
            "all",
            "--from",
            "2026-09-01",
            "--to",
            "2026-09-30",
            "--format",
            "csv",
        ),
        ("outbox", "deliver"),
        ("audit", "verify"),
        ("console",),
        ("serve", "--port", "1"),
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_a_command_on_a_missing_sqlite_file_is_refused_and_creates_nothing(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    typo = tmp_path / "sites" / "outrech.db"
    result = run(
        *command, "--database", f"sqlite:///{typo}", env=SIGNED_IN, cwd=tmp_path
    )  # fmt: skip
    assert result.returncode == 2, result
    assert result.stderr == (
        f"outreach: no database at {typo} (outreach demo or outreach db upgrade makes one)\n"
    )
    assert result.stdout == ""
    assert not typo.parent.exists()


def test_the_database_named_by_the_environment_is_checked_too(tmp_path: Path) -> None:
    result = run(
        "queue", "stats", env={"OUTREACH_DATABASE_URL": "sqlite:///var/nowhere.db"}, cwd=tmp_path
    )
    assert result.returncode == 2, result
    assert f"no database at {tmp_path / 'var' / 'nowhere.db'} " in result.stderr
    assert not (tmp_path / "var").exists()


def test_db_upgrade_makes_the_database_the_others_then_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'site' / 'outreach.db'}"
    made = run("db", "upgrade", "--database", url, cwd=tmp_path)
    assert made.returncode == 0, made
    assert "database id " in made.stdout  # where consoles keep its drafts (console/drafts.py)
    assert (tmp_path / "site" / "outreach.db").is_file()
    stats = run("queue", "stats", "--database", url, cwd=tmp_path)
    assert stats.returncode == 1  # there now, and empty: the next step is said
    assert "holds no pharmacies" in stats.stderr and "no database at" not in stats.stderr
