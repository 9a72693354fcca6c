"""An agent whose queue is empty is told why, in numbers, and when the next patient opens."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from console.app import OutreachApp
from console.screens.workspace import WorkspaceScreen
from console.widgets.patient_card import PatientCard
from tests.e2e.helpers import login, press
from tests.world import make_world, visible_text

LATE = datetime(2026, 12, 3, 3, 30, tzinfo=UTC)  # Wednesday 21:30 in Dallas: every window shut


async def test_empty_queue_says_why_in_numbers_and_when_it_opens(tmp_path: Path) -> None:
    w = make_world(tmp_path, f"sqlite:///{tmp_path / 'late.db'}", LATE, {"Alvarez": 1, "Brown": 3})
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        screen = app.screen
        assert isinstance(screen, WorkspaceScreen)
        await press(pilot, "r")
        assert screen.phase == "waiting" and screen.offer is None
        assert "No patient is callable right now." in visible_text(app)
        card = screen.query_one(PatientCard)
        text = " ".join(str(card.render()).split())
        assert "No patient is callable right now." in text
        # Both run out within the refill window; Texas's window shut at 21:00.
        assert "2 patients due: 2 outside their calling window until Thu 08:00 CST" in text
        assert "The next one becomes callable at Thu 08:00 CST" in text
