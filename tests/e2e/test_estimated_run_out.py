"""A run-out worked out from an imported prescription (no dispense in the source: the import made
an estimated fill) says "estimated" next to its date on the agent's screen, in the medications
table and in the card's reason, at 80 and at 120 columns; a dispensed one does not."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from console.app import OutreachApp
from console.widgets.medications import MedicationsTable
from queues.store.db import transaction
from queues.store.models import Fill
from tests.e2e.helpers import login, press
from tests.world import make_world, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


def cells(table: MedicationsTable) -> list[str]:
    return [str(c) for i in range(table.row_count) for c in table.get_row_at(i)]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("estimated", [True, False], ids=["estimated", "dispensed"])
async def test_an_estimated_run_out_says_so_next_to_its_date(
    tmp_path: Path, size: tuple[int, int], estimated: bool
) -> None:
    w = make_world(tmp_path, f"sqlite:///{tmp_path / 'est.db'}", NOW, {"Alvarez": 2})
    with transaction(w.store.sessions) as s:
        s.execute(update(Fill).values(estimated=estimated))
    app = OutreachApp(w.services)
    async with app.run_test(size=size) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        table = app.screen.query_one(MedicationsTable)
        run_out = [c for c in cells(table) if c.startswith("Dec 04")]
        assert run_out == (["Dec 04 +2d estimated"] if estimated else ["Dec 04 +2d"])
        shown = visible_text(app)
        assert ("(estimated)" in shown) is estimated  # the card: "runs out in 2 days (estimated)"
        assert ("estimated" in shown) is estimated
