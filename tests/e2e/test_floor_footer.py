"""The floor's footer at 80×24 and 120×40 (Pilot, SQLite file): on every tab, with the row that
shows the most keys selected (a paused campaign: Resume; an agent on a call holding a patient:
Release and Log out agent; a callback: Reassign; a locked account: Unlock), every key the footer
shows is drawn whole, left of the command palette's key; and a key that would not act on the
selected row is not shown (a pharmacy's row has no Pause, an offline agent no Log out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from textual.pilot import Pilot
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel

from console.app import OutreachApp
from console.widgets.floor_tables import AgentsTable, QueuesTable, SignInsTable
from queues.store.db import transaction
from queues.store.models import AgentState, Campaign, QueueEntry, User
from queues.timeutil import utcnow
from tests.e2e.helpers import floor_world, login, press
from tests.e2e.test_floor_sign_ins import fail_five_times

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


async def footer_keys(pilot: Pilot[Any]) -> list[str]:
    """The footer's keys and group words, each asserted whole and left of the palette's key."""
    await pilot.pause()  # the footer's keys laid out after the bindings changed
    await pilot.pause()
    app = pilot.app
    footer = app.screen.query_one(Footer)
    palette = footer.query_one(".-command-palette", FooterKey)
    shown = []
    for part in footer.query("FooterKey, FooterLabel"):
        if part is palette:
            continue
        assert isinstance(part, FooterKey | FooterLabel)
        plain = part.render()
        text = plain if isinstance(plain, str) else str(getattr(plain, "plain", plain))
        assert part.region.width >= len(text.strip()), text
        assert part.region.right <= palette.region.x, (text, part.region, palette.region)
        shown.append(text.strip())
    assert palette.region.right <= footer.region.right
    return shown


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_every_key_the_footer_shows_is_whole(tmp_path: Path, size: tuple[int, int]) -> None:
    w = floor_world(tmp_path, NOW)
    fail_five_times(w, "ana", "cli@host7", utcnow())
    with transaction(w.store.sessions) as s:
        ana = s.scalar(select(User.id).where(User.username == "ana"))
        s.execute(update(Campaign).values(active=False))  # the longer word: Resume
        s.add(AgentState(user_id=ana, state="on_call", since=NOW - timedelta(minutes=2)))
        s.execute(
            update(QueueEntry)
            .where(QueueEntry.patient_id == w.patients["Alvarez"])
            .values(
                holder_id=ana,
                lease_token="t",
                claimed_at=NOW - timedelta(minutes=2),
                lease_expires_at=NOW + timedelta(minutes=10),
            )
        )
    app = OutreachApp(w.services)
    async with app.run_test(size=size) as pilot:
        await login(pilot, "sue")
        queues = app.screen.query_one(QueuesTable)
        assert queues.cursor_row == 1  # the floor opens on the first campaign, not its pharmacy
        keys = await footer_keys(pilot)
        assert keys[:5] == ["space Resume", "+", "-", "w", "Weight"], keys
        assert keys[-4:] == ["n Do-not-call", "R Report", "O Outbox", "L Sign out"], keys
        queues.move_cursor(row=0)  # the pharmacy's row: nothing to pause or weigh
        await press(pilot)
        assert await footer_keys(pilot) == ["n Do-not-call", "R Report", "O Outbox", "L Sign out"]

        await press(pilot, "2")
        names = [str(app.screen.query_one(AgentsTable).get_row_at(i)[0]) for i in range(2)]
        app.screen.query_one(AgentsTable).move_cursor(row=names.index("Ana"))
        await press(pilot)
        assert (await footer_keys(pilot))[:2] == ["x Release", "o Log out agent"]
        app.screen.query_one(AgentsTable).move_cursor(row=names.index("Ben"))  # offline
        await press(pilot)
        assert (await footer_keys(pilot))[0] == "n Do-not-call"

        await press(pilot, "3")
        assert (await footer_keys(pilot))[0] == "a Reassign"
        await press(pilot, "4")
        assert (await footer_keys(pilot))[0] == "n Do-not-call"
        await press(pilot, "5")
        assert app.screen.query_one(SignInsTable).row_count == 2
        assert (await footer_keys(pilot))[0] == "u Unlock"
