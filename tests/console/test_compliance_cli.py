"""`outreach compliance check` and `outreach queue explain` as a user runs them: in this process
through `console.cli.main` (tests/cli.py), one refusal as a real process (its exit status)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from queues.store.db import make_engine, session_factory
from queues.store.models import AuditEvent, User
from tests import cli
from tests.world import PASSWORD, make_world

ROOT = Path(__file__).parents[2]


def outreach(
    *args: str, cwd: Path = ROOT, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`outreach ARGS` in this process; `user` signs in (make_world's password) for `queue explain`."""
    env = {} if user is None else {"OUTREACH_USER": user, "OUTREACH_PASSWORD": PASSWORD}
    return cli.run(*args, env=env, cwd=cwd)


def outreach_process(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """A real `outreach` process."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OUTREACH_DATABASE_URL", "OUTREACH_CONFIG", "OUTREACH_USER")
    }
    return subprocess.run(
        [sys.executable, "-m", "console", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def last_json(text: str) -> dict[str, object]:
    line = text.strip().splitlines()[-1]
    found: dict[str, object] = json.loads(line)
    return found


@pytest.mark.parametrize(
    ("zip_code", "phone", "moment", "ok", "codes", "next_open"),
    [
        ("75201", "+12145550100", "2026-12-02T18:00:00Z", True, [], "2026-12-02T12:00:00-06:00"),
        ("33101", "+13055550100", "2026-12-03T01:30:00Z", False, ["state_window_FL"],
         "2026-12-03T08:00:00-05:00"),
        ("10001", "+13105550100", "2026-12-02T13:30:00Z", False, ["federal_window"],
         "2026-12-02T11:00:00-05:00"),
    ],
)  # fmt: skip
def test_compliance_check_json(
    zip_code: str, phone: str, moment: str, ok: bool, codes: list[str], next_open: str
) -> None:
    result = outreach(
        "compliance", "check", "--zip", zip_code, "--phone", phone, "--at", moment, "--json"
    )
    assert result.returncode == (0 if ok else 1), result.stderr  # "not callable" is not success
    verdict = last_json(result.stdout)
    assert verdict["callable"] is ok
    assert [r["code"] for r in verdict["reasons"]] == codes  # type: ignore[attr-defined]
    assert all(r["sentence"] for r in verdict["reasons"])  # type: ignore[attr-defined]
    assert verdict["next_open_at"] == next_open
    assert verdict["zones"]
    assert ("callable  yes" if ok else "callable  no") in result.stdout


def test_compliance_check_with_state_applies_that_states_rules() -> None:
    result = outreach(
        "compliance", "check", "--zip", "75201", "--phone", "+12145550100", "--state", "KY",
        "--at", "2026-12-02T09:30-06:00", "--json",
    )  # fmt: skip
    verdict = last_json(result.stdout)
    assert [r["code"] for r in verdict["reasons"]] == ["state_window_KY"]  # type: ignore[attr-defined]


def test_compliance_check_respects_a_tighter_config(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[queue]\ncalling_window_start = "10:00"\n')
    result = outreach(
        "compliance", "check", "--zip", "75201", "--phone", "+12145550100",
        "--at", "2026-12-02T09:30-06:00", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert [r["code"] for r in last_json(result.stdout)["reasons"]] == ["calling_window"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--zip", "7520", "--phone", "+12145550100", "--at", "2026-12-02T12:00Z"), "--zip"),
        (("--zip", "75201", "--phone", "2145550100", "--at", "2026-12-02T12:00Z"), "--phone"),
        (("--zip", "75201", "--phone", "+12145550100", "--at", "noon"), "--at"),
        (("--zip", "75201", "--phone", "+12145550100", "--at", "2026-12-02T12:00"), "--at"),
        (("--zip", "75201", "--phone", "+12145550100", "--state", "XX"), "--state"),
    ],
)
def test_compliance_check_bad_input_names_the_argument(args: tuple[str, ...], named: str) -> None:
    result = outreach("compliance", "check", *args)
    assert result.returncode == 2
    assert named in result.stderr


def test_compliance_check_exit_codes_are_in_its_help() -> None:
    result = outreach("compliance", "check", "--help")
    assert result.returncode == 0
    assert "0 callable now; 1 not callable now" in " ".join(result.stdout.split())


def test_a_zip_that_does_not_exist_falls_back_to_the_area_code_and_says_so() -> None:
    result = outreach(
        "compliance", "check", "--zip", "00000", "--phone", "+12145550100",
        "--at", "2026-12-02T11:30:00Z", "--json",
    )  # fmt: skip
    # 05:30 in Dallas (the area code's zone): not callable, though the ZIP gave no zone at all.
    assert result.returncode == 1, result.stderr
    verdict = last_json(result.stdout)
    assert verdict["callable"] is False and verdict["zones"] == ["America/Chicago"]
    assert any("'00000' is not a known US ZIP code" in n for n in verdict["notes"])  # type: ignore[attr-defined]
    assert "number's area code" in result.stdout


def test_a_zip_that_does_not_exist_and_a_number_of_no_known_place_are_refused() -> None:
    result = outreach_process(  # a real process: "not callable" is exit status 1 to the shell
        "compliance", "check", "--zip", "00000", "--phone", "+18005550100",
        "--at", "2026-12-02T18:00:00Z", "--json",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    codes = [r["code"] for r in last_json(result.stdout)["reasons"]]  # type: ignore[attr-defined]
    assert "zone_unknown" in codes


def test_queue_explain_shows_verdict_tasks_scores_and_caps(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    now = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # 10:00 in Dallas
    world = make_world(tmp_path, url, now, {"Able": 1})
    world.services.close()
    pid = str(world.patients["Able"])
    result = outreach(
        "queue", "explain", pid, "--now", "2026-12-02T10:00-06:00", "--json", "--database", url,
        user="ana",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = last_json(result.stdout)
    assert found["callable"] is True and found["zones"] == ["America/Chicago"]
    assert found["caps"] == {
        "daily": {"used": 0, "limit": 1},
        "weekly": {"used": 0, "limit": 3},
        "same_subject_24h": {"used": 0, "limit": 3},
    }
    tasks = found["tasks"]
    assert isinstance(tasks, list) and tasks and "score" in tasks[0] and "parts" in tasks[0]
    late = outreach(
        "queue", "explain", pid, "--now", "2026-12-02T21:30-06:00", "--database", url, user="sue"
    )
    assert late.returncode == 0, late.stderr
    assert "federal_window" in late.stdout and "next open" in late.stdout
    engine = make_engine(url)
    with session_factory(engine)() as s:
        views = s.scalars(select(AuditEvent).where(AuditEvent.action == "explain")).all()
        users = {uid: name for uid, name in s.execute(select(User.id, User.username))}
    engine.dispose()
    assert len(views) == 2 and views[0].patient_id == int(pid)
    assert [users[v.user_id] for v in views if v.user_id] == ["ana", "sue"]  # who looked
    unknown = outreach("queue", "explain", "NOPE-1", "--database", url, user="ana")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "no patient 'NOPE-1' in your pharmacies (TX1)" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_queue_explain_without_a_sign_in_shows_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    world = make_world(tmp_path, url, datetime(2026, 12, 2, 16, 0, tzinfo=UTC), {"Able": 1})
    world.services.close()
    result = outreach("queue", "explain", str(world.patients["Able"]), "--database", url)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == (
        "outreach: sign in first: give --user NAME (or set OUTREACH_USER)"
    )
