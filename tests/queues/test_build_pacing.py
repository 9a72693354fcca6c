"""A full build makes way for agents' claims: after each write step it pauses in proportion to the
step's time (`[build]` in config.toml), and still stores exactly the build it would have stored
without pausing."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from console.config import load_settings
from demo.world import seed_demo
from queues.building import stepwise
from queues.building.settings import BuildSettings
from queues.errors import ConfigError
from queues.store.db import make_engine, session_factory
from tests.conftest import copy_migrated

T0 = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
DAY_AFTER = T0 + timedelta(days=1)
STEP_S = 0.004  # what every write step takes on the stand-in clock


class SteppingClock:
    """Stands in for the wall clock: each reading is STEP_S after the last, so every write step
    (two readings) took STEP_S exactly; the pauses are noted, never slept."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        self.now += STEP_S
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SteppingClock:
    stand_in = SteppingClock()
    monkeypatch.setattr(stepwise, "_clock", stand_in)
    monkeypatch.setattr(stepwise, "_sleep", stand_in.sleep)
    return stand_in


def an_agent_signs_in(sessions: sessionmaker[Session]) -> None:
    """The pauses are for agents' claims: a build paces itself only while someone works."""
    with sessions.begin() as s:
        s.execute(
            text(
                "INSERT INTO agent_states (user_id, state, since) "
                "SELECT id, 'ready', :at FROM users WHERE role = 'agent' ORDER BY id LIMIT 1"
            ),
            {"at": T0.replace(tzinfo=None)},
        )


def steps_logged(caplog: pytest.LogCaptureFixture) -> int:
    done = [r.getMessage() for r in caplog.records if "full build: done" in r.getMessage()]
    assert len(done) == 1
    found = re.search(r"done \((\d+) steps", done[0])
    assert found is not None
    return int(found.group(1))


def test_a_full_build_pauses_after_each_write_step_in_proportion_to_it(
    sessions: sessionmaker[Session], clock: SteppingClock, caplog: pytest.LogCaptureFixture
) -> None:
    seed_demo(sessions, patients=60, seed=5, now=T0)
    an_agent_signs_in(sessions)
    caplog.set_level(logging.INFO, logger=stepwise.__name__)
    stepwise.build_queues_in_steps(
        sessions, DAY_AFTER, build=BuildSettings(write_pause_ratio=3.0, max_write_pause_ms=200)
    )
    steps = steps_logged(caplog)
    assert steps > 1
    # On SQLite each step is its write and then the build's checkpoint of the WAL: both paid for.
    step_s = STEP_S * (2 if sessions.kw["bind"].dialect.name == "sqlite" else 1)
    assert clock.pauses == pytest.approx([3.0 * step_s] * steps)


def test_no_pause_is_longer_than_the_longest_allowed(
    sessions: sessionmaker[Session], clock: SteppingClock, caplog: pytest.LogCaptureFixture
) -> None:
    seed_demo(sessions, patients=30, seed=5, now=T0)
    an_agent_signs_in(sessions)
    caplog.set_level(logging.INFO, logger=stepwise.__name__)
    stepwise.build_queues_in_steps(
        sessions, DAY_AFTER, build=BuildSettings(write_pause_ratio=20.0, max_write_pause_ms=50)
    )
    assert clock.pauses == pytest.approx([0.05] * steps_logged(caplog))


def test_a_ratio_of_zero_never_pauses(
    sessions: sessionmaker[Session], clock: SteppingClock, caplog: pytest.LogCaptureFixture
) -> None:
    seed_demo(sessions, patients=30, seed=5, now=T0)
    an_agent_signs_in(sessions)
    caplog.set_level(logging.INFO, logger=stepwise.__name__)
    stepwise.build_queues_in_steps(sessions, DAY_AFTER, build=BuildSettings(write_pause_ratio=0))
    assert steps_logged(caplog) > 1 and clock.pauses == []


def test_with_nobody_working_the_build_does_not_pause_and_a_held_patient_paces_it(
    sessions: sessionmaker[Session], clock: SteppingClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The nightly build, nobody signed in: no pause (the pauses only make way for claims). A
    patient held (a console claiming, signed in or not) and it paces itself again."""
    seed_demo(sessions, patients=30, seed=5, now=T0)
    caplog.set_level(logging.INFO, logger=stepwise.__name__)
    paced = BuildSettings(write_pause_ratio=3.0)
    stepwise.build_queues_in_steps(sessions, DAY_AFTER, build=paced)
    assert steps_logged(caplog) > 1 and clock.pauses == []
    with sessions.begin() as s:
        s.execute(
            text(
                "UPDATE queue_entries SET holder_id = (SELECT min(id) FROM users) "
                "WHERE patient_id = (SELECT min(patient_id) FROM queue_entries)"
            )
        )
    caplog.clear()
    stepwise.build_queues_in_steps(sessions, DAY_AFTER + timedelta(days=1), build=paced)
    assert len(clock.pauses) == steps_logged(caplog) > 1


def first_build_in_small_or_idle_steps(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    """A world with no tasks yet (a first build, as after a big import), steps of 10 rows while
    someone works and 40 while nobody does (SQLite: 10 rows whatever they take); returns the
    list each build's task steps' sizes are noted in."""
    seed_demo(sessions, patients=120, seed=5, now=T0)
    with sessions.begin() as s:
        s.execute(text("DELETE FROM queue_entries"))
        s.execute(text("UPDATE attempts SET task_ids = '{}'"))
        s.execute(text("DELETE FROM tasks"))
    monkeypatch.setattr(stepwise, "STEP_ROWS", 10)
    monkeypatch.setattr(stepwise, "IDLE_STEP_ROWS", 40)
    monkeypatch.setattr(stepwise, "SQLITE_MIN_STEP_ROWS", 10)
    monkeypatch.setattr(stepwise, "SQLITE_STEP_SECONDS", 60.0)
    sizes: list[int] = []
    real_insert = stepwise.insert_rows

    def note(conn: Any, name: str, columns: Any, new: Any, **kwargs: Any) -> None:
        if name == "tasks":
            sizes.append(len(new))
        real_insert(conn, name, columns, new, **kwargs)

    monkeypatch.setattr(stepwise, "insert_rows", note)
    return sizes


def test_with_nobody_working_the_build_writes_in_larger_steps(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While nobody works, a step is IDLE_STEP_ROWS rows (each step costs the build milliseconds
    besides its rows, and no claim waits on it); with an agent signed in, the steps are small
    again (SQLite's sized by the time they hold the write lock)."""
    sizes = first_build_in_small_or_idle_steps(sessions, monkeypatch)
    stepwise.build_queues_in_steps(sessions, T0)
    alone = list(sizes)
    with sessions.begin() as s:
        s.execute(text("DELETE FROM queue_entries"))
        s.execute(text("DELETE FROM tasks"))
    an_agent_signs_in(sessions)
    sizes.clear()
    stepwise.build_queues_in_steps(sessions, T0)
    assert sum(alone) == sum(sizes) > 100
    assert max(alone) == 40 and max(sizes) == 10


def test_an_agent_who_signs_in_mid_build_meets_small_steps_from_the_next_one(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The steps' size is decided as each step is cut, on PostgreSQL even for new rows queued
    while the rules worked: once someone works, the next step is small again."""
    sizes = first_build_in_small_or_idle_steps(sessions, monkeypatch)
    monkeypatch.setattr(stepwise, "AGENTS_RECHECK_S", 0.0)  # asked again at every step
    real_step = stepwise._Steps._step
    signed_in: list[bool] = []

    def step_then_sign_in(self: stepwise._Steps, write: Any, args: tuple[Any, ...]) -> None:
        real_step(self, write, args)
        if len(sizes) == 1 and not signed_in:  # after the first step of new tasks
            signed_in.append(True)
            an_agent_signs_in(sessions)

    monkeypatch.setattr(stepwise._Steps, "_step", step_then_sign_in)
    stepwise.build_queues_in_steps(sessions, T0, build=BuildSettings(write_pause_ratio=0))
    assert sizes[0] == 40 and len(sizes) > 5
    assert max(sizes[1:]) == 10


def rows(sessions: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    with sessions() as s:
        return {
            "tasks": [
                tuple(r)
                for r in s.execute(
                    text(
                        "SELECT id, patient_id, campaign_id, subject, status, reason, score, "
                        "priority_parts, closed_reason FROM tasks ORDER BY id"
                    )
                )
            ],
            "queue_entries": [
                tuple(r)
                for r in s.execute(
                    text(
                        "SELECT patient_id, status, sort_key, admitted_at, admitted_until, "
                        "admitted_key FROM queue_entries ORDER BY patient_id"
                    )
                )
            ],
        }


def test_a_paced_build_stores_what_a_build_without_pauses_stores(
    tmp_path: Path, clock: SteppingClock
) -> None:
    built: dict[float, Any] = {}
    for ratio in (0.0, 5.0):
        engine = make_engine(copy_migrated(tmp_path / f"ratio-{ratio}.db"))
        sessions = session_factory(engine)
        seed_demo(sessions, patients=120, seed=7, now=T0)
        an_agent_signs_in(sessions)
        paused_before = len(clock.pauses)
        result = stepwise.build_queues_in_steps(
            sessions, DAY_AFTER, build=BuildSettings(write_pause_ratio=ratio)
        )
        assert (len(clock.pauses) > paused_before) == (ratio > 0)
        built[ratio] = (result, rows(sessions))
        engine.dispose()
    assert built[0.0][1]["tasks"] and built[0.0][1]["queue_entries"]
    assert built[5.0] == built[0.0]


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ("write_pause_ratio = -1", "build.write_pause_ratio", "a number from 0 to 20, got -1.0"),
        ("write_pause_ratio = 21", "build.write_pause_ratio", "a number from 0 to 20, got 21.0"),
        ("write_pause_ratio = nan", "build.write_pause_ratio", "a number from 0 to 20, got nan"),
        ('write_pause_ratio = "slow"', "build.write_pause_ratio", "expected a number, got 'slow'"),
        ("max_write_pause_ms = -5", "build.max_write_pause_ms", "expected 0 to 5000"),
        ("max_write_pause_ms = 0.5", "build.max_write_pause_ms", "expected an integer, got 0.5"),
        ("pause = 1", "build.pause", "unknown key; expected one of: max_write_pause_ms"),
    ],
)
def test_a_bad_build_setting_stops_with_the_file_and_the_key(
    tmp_path: Path, line: str, key: str, expected: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[build]\n{line}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {key}: ") and expected in message


def test_the_shipped_config_paces_builds_by_default() -> None:
    shipped = load_settings(Path(__file__).parents[2] / "config.toml").build
    assert shipped == BuildSettings() and shipped.write_pause_ratio > 0


def test_on_sqlite_the_build_copies_its_wal_pages_itself(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """After each step the build checkpoints the WAL on its own connection, so no claim's commit
    is the one that takes it past wal_autocheckpoint and copies the build's pages."""
    engine = make_engine(sqlite_url)
    sessions = session_factory(engine)
    seed_demo(sessions, patients=120, seed=7, now=T0)
    answers: list[tuple[int, int, int]] = []
    real = stepwise._checkpoint

    def checkpoint_and_note(bound: Any) -> tuple[int, int, int]:
        answers.append(real(bound))
        return answers[-1]

    caplog.set_level(logging.INFO, logger=stepwise.__name__)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stepwise, "_checkpoint", checkpoint_and_note)
        patch.setattr(stepwise, "_sleep", lambda _s: None)
        stepwise.build_queues_in_steps(sessions, DAY_AFTER)
    engine.dispose()
    # One checkpoint after every step, and each copied every page the WAL held.
    assert len(answers) == steps_logged(caplog) > 1
    assert all(busy == 0 and pages == copied for busy, pages, copied in answers)
