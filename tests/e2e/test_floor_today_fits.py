"""The supervisor's Today tab at 80x24 and 120x40, through the real app (issue 21): the day's
figures are whole on screen, none cut or broken across two lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from tests.e2e.helpers import login, press
from tests.e2e.test_snapshots import app_at_now
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
        assert "Reached – call completed" in text  # the dispositions table's outcome, whole
        if size == (120, 40):
            assert len(lines) <= 2, lines
