"""One database by default: after `outreach demo`, every command without --database opens the
demo's; a command on a database without pharmacies says so, and how to fix it, with exit 1."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

from tests import cli


def _outreach(
    cwd: Path, *args: str, signed_in: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`outreach ARGS` in `cwd` (in this process, tests/cli.py), no OUTREACH_* variable set but
    `signed_in`'s."""
    clear = [k for k in os.environ if k.startswith("OUTREACH_")]
    return cli.run(*args, cwd=cwd, env=signed_in or {}, clear=clear)


def test_after_the_demo_every_command_opens_its_database(tmp_path: Path) -> None:
    made = _outreach(
        tmp_path, "demo", "--seed-only", "--patients", "30", "--now", "2026-12-02T10:00"
    )
    assert made.returncode == 0, made.stderr
    assert "var/outreach.db" in made.stdout
    stats = _outreach(tmp_path, "queue", "stats")
    assert stats.returncode == 0, stats.stderr
    report = _outreach(
        tmp_path,
        "report",
        "--pharmacy",
        "all",
        "--from",
        "2026-09-01",
        "--to",
        "2026-11-30",
        "--format",
        "csv",
        signed_in={"OUTREACH_USER": "supervisor", "OUTREACH_PASSWORD": "supervisor-demo-1"},
    )
    assert report.returncode == 0, report.stderr
    rows = [line.split(",") for line in report.stdout.splitlines()]
    called = {r[0]: int(r[4]) for r in rows if r[3] == "patients_called"}
    assert set(called) == {"AZ-PHX", "FL-MIA", "TX-HOU"}
    assert all(n > 0 for n in called.values())  # the demo's past calls are in the report


CSV = ("--format", "csv", "--database")


def test_a_command_on_a_database_without_pharmacies_says_how_to_fix_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    # (A file that is not there is refused sooner: tests/console/test_missing_database.py.)
    made = _outreach(tmp_path, "db", "upgrade", "--database", url)
    assert made.returncode == 0, made.stderr
    for args in (
        ("queue", "stats", "--database", url),
        ("report", "--pharmacy", "all", "--from", "2026-09-01", "--to", "2026-09-30", *CSV, url),
        ("serve", "--database", url, "--port", "1"),
    ):
        done = _outreach(tmp_path, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert "holds no pharmacies" in done.stderr
        assert "outreach demo" in done.stderr
        assert "Traceback" not in done.stderr
        assert done.stdout == ""


def test_the_demo_database_file_alone_holds_the_seeded_data(tmp_path: Path) -> None:
    """Once `demo --seed-only` returns, every connection is closed, so SQLite has moved its writes
    from the -wal file into the database file: a copy of `outreach.db` alone is the whole demo."""
    made = _outreach(
        tmp_path, "demo", "--seed-only", "--patients", "30", "--now", "2026-12-02T10:00"
    )
    assert made.returncode == 0, made.stderr
    db = tmp_path / "var" / "outreach.db"
    assert not db.with_name("outreach.db-wal").exists()
    copy = tmp_path / "copy.db"
    copy.write_bytes(db.read_bytes())
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM patients").fetchone() == (30,)
