"""Numbers that would run for hours or overflow far from their flag are refused at the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cli import main


def test_demo_refuses_a_patient_count_it_would_never_finish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.db"
    rc = main(
        [
            "demo",
            "--seed-only",
            "--patients",
            "99999999999999999999",
            "--database",
            f"sqlite:///{db}",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert "--patients: give 1 to 1,000,000" in err
    assert not db.exists()


def test_a_time_at_the_end_of_the_calendar_is_refused_at_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'o.db'}"
    rc = main(["queue", "build", "--now", "9999-12-31T23:59:59-12:00", "--database", db])
    err = capsys.readouterr().err
    assert rc == 1
    assert "--now" in err and "between the years 1900 and 9000" in err
    assert "Traceback" not in err
