"""The supervisor's Today tab at 80x24 and 120x40, through the real app (issue 21): the day's
figures are whole on screen, none cut or broken across two lines."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from textual.widgets import Static

from console.widgets.floor_tables import DispositionsTable
from queues.store.db import transaction
from queues.store.models import Attempt, Patient
from tests.e2e.helpers import login, press, user_id
from tests.e2e.test_snapshots import NOW, app_at_now
from tests.world import visible_text

# The world's day: one call, one patient reached, a refill request, an overdue callback.
FIGURES = (
    "1 call to 1 patient",
    "1 reached (100%)",
    "refill requests 1",
    "med-sync enrollments 0",
    "escalations 0",
    "callbacks due 1 (overdue 1)",
)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_todays_figures_fit_whole(tmp_path: Path, size: tuple[int, int]) -> None:
    app = app_at_now(tmp_path)
    async with app.run_test(size=size) as pilot:
        await login(pilot, "sue")
        await press(pilot, "4")  # Today
        figures = app.screen.query_one("#outcome-figures", Static)
        lines = str(figures.render()).splitlines()
        assert all(len(line) <= figures.content_region.width for line in lines), lines
        text = visible_text(app)
        for figure in FIGURES:  # each whole, on one line
            assert figure in text, (figure, lines)
        assert "Reached – completed" in text  # the dispositions table's outcome, short words
        if size == (120, 40):
            assert len(lines) <= 2, lines


async def test_long_outcomes_and_their_counts_fit_at_80(tmp_path: Path) -> None:
    """A line failure and a transfer today: their outcomes read in short words and the Calls
    column stays on screen beside them."""
    app = app_at_now(tmp_path)
    store = app.services._store
    with transaction(store.sessions) as s:
        ana = user_id(s, "ana")
        patient = s.scalars(select(Patient.id)).first()
        for i, code in enumerate(("line_failed", "transferred_pharmacist", "callback_requested")):
            started = NOW - timedelta(minutes=30 - i)
            s.add(
                Attempt(
                    uid=str(uuid.UUID(int=100 + i)),
                    patient_id=patient,
                    user_id=ana,
                    started_at=started,
                    ended_at=started + timedelta(minutes=1),
                    recorded_at=started + timedelta(minutes=2),
                    disposition=code,
                )
            )
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "sue")
        await press(pilot, "4")  # Today
        table = app.screen.query_one(DispositionsTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width, (
            table.virtual_size.width,
            table.scrollable_content_region.width,
        )
        text = visible_text(app)
        for words in ("Reached – to pharmacist", "Reached – callback", "Line failed"):
            assert words in text, words
