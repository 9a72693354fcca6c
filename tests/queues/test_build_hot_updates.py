"""PostgreSQL: a full build takes each page's rows a few at a time (queues.building.stepwise
._Steps.spread), so a new day's rescores and admissions find room on their page and stay on it
(HOT updates: no new index entries)."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from demo.world import seed_demo
from queues.building import stepwise
from queues.store.db import make_engine, session_factory, upgrade

T0 = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


def test_a_new_days_rescores_take_each_stretch_of_the_table_a_few_rows_a_step(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL each step's rescores are every SPREAD_WAYS-th of the rows in id order, so a
    page's rows are rescored in several steps and its room serves them all (measured at 100,000
    patients: bench/README.md); within a step they are updated in id order, as every other
    writer takes them (a step across two passes of the spread would otherwise take high ids
    before low ones: a deadlock with a concurrent writer). On SQLite they stay in id order."""
    sessions: sessionmaker[Session] = session_factory(engine)
    seed_demo(sessions, patients=120, seed=5, now=T0)
    monkeypatch.setattr(stepwise, "STEP_ROWS", 16)
    monkeypatch.setattr(stepwise, "IDLE_STEP_ROWS", 16)  # nobody works here
    monkeypatch.setattr(stepwise, "SQLITE_STEP_SECONDS", 60.0)  # SQLite: 16 rows whatever they take
    steps: list[list[int]] = []
    real_execute = stepwise._execute

    def execute_and_note(conn: Any, statement: Any, params: list[dict[str, Any]]) -> None:
        if statement is stepwise._RESCORE_GUARDED:
            steps.append([p["_id"] for p in params])
        real_execute(conn, statement, params)

    monkeypatch.setattr(stepwise, "_execute", execute_and_note)
    stepwise.build_queues_in_steps(sessions, T0 + timedelta(days=1))
    ids = sorted(i for step in steps for i in step)
    assert len(ids) > 64 and len(set(ids)) == len(ids)  # a new day: most tasks rescored, once
    where = {task_id: n for n, task_id in enumerate(ids)}
    if engine.dialect.name == "postgresql":
        ways = stepwise.SPREAD_WAYS
        spread = [n for first in range(ways) for n in range(first, len(ids), ways)]
        at = 0
        for step in steps:  # each step the spread's next rows, updated in id order (no deadlock)
            taken = [where[i] for i in step]
            assert taken == sorted(spread[at : at + len(step)])
            at += len(step)
        assert at == len(spread)
    else:
        assert [i for step in steps for i in step] == ids


def test_the_spread_takes_every_row_once_each_step_a_few_per_stretch() -> None:
    steps = stepwise._Steps.__new__(stepwise._Steps)
    steps.sqlite = False
    rows = list(range(1000))
    spread = steps.spread(rows)
    assert sorted(spread) == rows
    first = spread[:16]
    assert all(b - a == stepwise.SPREAD_WAYS for a, b in itertools.pairwise(first))
    steps.sqlite = True  # SQLite: in the table's order
    assert steps.spread(rows) == rows


def test_postgres_write_steps_are_smaller_than_sqlites_largest(engine: Engine) -> None:
    """PostgreSQL's steps are POSTGRES_STEP_ROWS (200) rows: the claims' p99 in the build's write
    steps was lower with them than with 500 (bench/README.md); SQLite's are sized by their time,
    up to SQLITE_STEP_ROWS."""
    steps = stepwise._Steps(session_factory(engine))
    if engine.dialect.name == "postgresql":
        assert steps.largest == stepwise.POSTGRES_STEP_ROWS == 200
    else:
        assert steps.largest == stepwise.SQLITE_STEP_ROWS == 500


def test_a_set_based_step_locks_its_rows_in_the_ascending_order_it_is_given(
    pg_url: str,
) -> None:
    """PostgreSQL: a build's update step is one set-based statement (stepwise._SET_BASED) over
    ids the step gives in ascending order; it must take their locks in that order, as every other
    writer does, or a save holding two of them the other way deadlocks with it. That holds while
    PostgreSQL drives the update from the arrays (a nested loop, its plan once a pharmacy has a
    few hundred patients; a table of a dozen is hash-joined in its own order, not this order).
    With the lowest row's version moved last in the table and the middle row held elsewhere, the
    step waits there holding the lowest id, not the highest."""
    engine = make_engine(pg_url, pool_size=5)
    upgrade(engine)
    try:
        sessions: sessionmaker[Session] = session_factory(engine)
        seed_demo(sessions, patients=300, seed=5, now=T0)
        with engine.connect() as conn:
            low, mid, high = conn.execute(
                text("SELECT id FROM tasks WHERE status = 'open' ORDER BY id LIMIT 3")
            ).scalars()
            # The lowest row's new version goes last on its page: a scan of the table now meets
            # it after the others, so neither the given order nor the table's is id order.
            conn.execute(text("UPDATE tasks SET reason = reason WHERE id = :i"), {"i": low})
            conn.commit()
        rows = [{"_id": i, "pp": "{}", "sc": 1.0, "re": "test"} for i in (low, mid, high)]
        holder = engine.connect()
        holder.execute(text("SELECT id FROM tasks WHERE id = :i FOR UPDATE"), {"i": mid})
        step_pid: list[int] = []

        def step() -> None:
            with engine.connect() as conn:
                step_pid.append(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
                stepwise._execute(conn, stepwise._RESCORE_GUARDED, rows)
                conn.commit()

        worker = threading.Thread(target=step)
        worker.start()
        with engine.connect() as probe:
            waiting = False
            for _ in range(2_000):  # until the step waits on the held row (no fixed sleep)
                if step_pid:
                    waiting = bool(
                        probe.execute(
                            text(
                                "SELECT 1 FROM pg_stat_activity WHERE pid = :p "
                                "AND wait_event_type = 'Lock'"
                            ),
                            {"p": step_pid[0]},
                        ).first()
                    )
                    probe.rollback()
                if waiting:
                    break
                time.sleep(0.005)
            assert waiting, "the step never waited on the row another transaction holds"

            def locked(task_id: int) -> bool:
                try:
                    probe.execute(
                        text("SELECT id FROM tasks WHERE id = :i FOR UPDATE NOWAIT"), {"i": task_id}
                    )
                    return False
                except OperationalError:
                    return True
                finally:
                    probe.rollback()

            assert locked(low) and not locked(high)
        holder.rollback()
        holder.close()
        worker.join(timeout=30)
        assert not worker.is_alive()
    finally:
        engine.dispose()
