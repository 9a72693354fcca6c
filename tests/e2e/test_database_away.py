"""The database goes away mid-shift (a PostgreSQL restart, a dropped link): the agent is told, in
plain words, and takes the next patient once it is back; the console never hangs on "claiming"."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, make_url, select, text
from textual.widgets import Static

from console.app import OutreachApp
from console.screens.floor import FloorScreen
from console.screens.workspace import WorkspaceScreen
from console.screens.wrap_up import WrapUpScreen
from queues.store.models import Attempt
from tests.e2e.helpers import login, press, settle
from tests.world import make_world, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


@contextmanager
def database_refusing(url: str) -> Iterator[None]:
    """The server refuses new connections to the database and drops the ones it has, as a
    restart does, until the block ends."""
    name = make_url(url).database
    admin = create_engine(os.environ["OUTREACH_TEST_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()


def _address_in(text: str, url: str) -> bool:
    """Whether the words an agent reads name the database: its host, port, user or name."""
    where = make_url(url)
    parts = (where.host, str(where.port or ""), where.username, where.database)
    return any(part and part in text for part in parts)


async def test_database_away_when_the_agent_presses_ready(tmp_path: Path, pg_url: str) -> None:
    w = make_world(tmp_path, pg_url, NOW, {"Alvarez": 1, "Brown": 3})
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "ana")
        screen = app.screen
        assert isinstance(screen, WorkspaceScreen)
        with database_refusing(pg_url):
            await press(pilot, "r")
            # Told what happened, back where Ready can be pressed again: not stuck on claiming
            # with Ready, Pause and Sign out all dimmed.
            messages = [n.message for n in app._notifications]
            told = [m for m in messages if "the database is unreachable — your work is kept" in m]
            assert len(told) == 1, messages  # said once, not once per handler
            assert not _address_in(" ".join(messages), pg_url), messages
            assert screen.phase == "not_ready"
            assert screen.check_action("ready", ()) is True
            assert screen.check_action("sign_out", ()) is True
            assert "Pat Alvarez" not in visible_text(app)
        await press(pilot, "r")
        assert "Pat Alvarez" in visible_text(app)


async def test_database_away_when_the_agent_dials(tmp_path: Path, pg_url: str) -> None:
    w = make_world(tmp_path, pg_url, NOW, {"Alvarez": 1})
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "ana")
        screen = app.screen
        assert isinstance(screen, WorkspaceScreen)
        await press(pilot, "r")
        assert "Pat Alvarez" in visible_text(app)
        with database_refusing(pg_url):
            await press(pilot, "d")  # the dial-time check cannot ask the database: no call
            messages = [n.message for n in app._notifications]
            assert any("Could not check the number" in m for m in messages), messages
            assert not _address_in(" ".join(messages), pg_url), messages
            assert screen.phase == "preview"
        await press(pilot, "d")
        assert screen.phase == "dialing"


async def test_database_away_when_the_agent_saves_the_wrap_up(tmp_path: Path, pg_url: str) -> None:
    w = make_world(tmp_path, pg_url, NOW, {"Alvarez": 1})
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        await press(pilot, "d")
        await press(pilot, "a")  # no answer
        await press(pilot, "w")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        with database_refusing(pg_url):
            await press(pilot, "ctrl+s")
            # Still on the wrap-up, told it is not saved and that it is kept; nothing lost.
            assert app.screen is wrap
            error = str(wrap.query_one("#wrap-up-error", Static).render())
            assert "Not saved yet: the database is unreachable — your work is kept" in error
            assert not _address_in(error, pg_url), error
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, WorkspaceScreen)
        assert "Saved. Press r for your next patient" in visible_text(app)
    with w.store.sessions() as s:
        attempts = s.execute(select(Attempt.patient_id, Attempt.disposition)).all()
    assert [tuple(a) for a in attempts] == [(w.patients["Alvarez"], "no_answer")]


async def test_the_floor_says_once_that_it_cannot_refresh_and_when_it_can_again(
    tmp_path: Path, pg_url: str
) -> None:
    w = make_world(tmp_path, pg_url, NOW, {"Alvarez": 1})
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "sue")
        floor = app.screen
        assert isinstance(floor, FloorScreen)

        def told(words: str) -> int:
            return sum(words in n.message for n in app._notifications)

        with database_refusing(pg_url):
            for _ in range(3):  # the refresh timer's ticks, every 2 s
                floor.action_refresh()
                await settle(pilot)
            assert told("Floor not refreshed: the database is unreachable") == 1
        floor.action_refresh()
        await settle(pilot)
        assert told("The floor is refreshing again") == 1
