"""The workspace's "Earlier attempts" table at 80x24 and 120x40, through the real app (issue 21):
the columns that matter most fit the narrow screen, the rest are one key (`i`, Details) away."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from console.app import OutreachApp
from console.widgets.history import AttemptHistory
from queues.store.db import transaction
from queues.store.models import Attempt, User
from tests.e2e.helpers import login, press
from tests.world import World, make_world, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas
OUTCOME = "Reached – transferred to pharmacist"  # the longest outcome label


def world(tmp_path: Path) -> World:
    w = make_world(tmp_path, f"sqlite:///{tmp_path / 'h.db'}", NOW, {"Alvarez": 1})
    with transaction(w.store.sessions) as s:
        ana = s.scalars(select(User).where(User.username == "ana")).one()
        for days, code in ((3, "no_answer"), (2, "transferred_pharmacist")):
            started = NOW - timedelta(days=days)
            s.add(
                Attempt(
                    uid=str(uuid.uuid4()),
                    patient_id=w.patients["Alvarez"],
                    user_id=ana.id,
                    phone_number="+12145551000",
                    started_at=started,
                    ended_at=started + timedelta(minutes=3),
                    recorded_at=started + timedelta(minutes=4),
                    disposition=code,
                    notes="Asked about the copay; pharmacist took it",
                )
            )
    return w


async def test_earlier_attempts_fit_80_columns_and_the_rest_is_one_key_away(
    tmp_path: Path,
) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        table = app.screen.query_one(AttemptHistory)
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[:2] == ["When", "Outcome"], labels
        # Nothing scrolled off to the right: the whole Outcome shows.
        assert table.virtual_size.width <= table.scrollable_content_region.width, (
            table.virtual_size.width,
            table.scrollable_content_region.width,
        )
        assert "Reached – to pharmacist" in visible_text(app)
        await press(pilot, "i")  # Details: every column
        labels = [str(c.label) for c in table.columns.values()]
        assert labels == ["When", "Outcome", "Agent", "Number", "Notes"], labels
        assert OUTCOME in [str(c) for c in table.get_row_at(0)]  # the whole outcome
        await press(pilot, "i")
        labels = [str(c.label) for c in table.columns.values()]
        assert "Number" not in labels


async def test_earlier_attempts_show_the_whole_outcome_at_120(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        table = app.screen.query_one(AttemptHistory)
        labels = [str(c.label) for c in table.columns.values()]
        # The whole outcome, and as many of the rest as fit, none scrolled off to the right.
        assert labels[:3] == ["When", "Outcome", "Agent"], labels
        assert table.virtual_size.width <= table.scrollable_content_region.width
        assert OUTCOME in visible_text(app)
