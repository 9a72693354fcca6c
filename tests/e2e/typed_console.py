"""A console for tests/e2e/test_typed_drafts.py to kill -9: the real app under Pilot, headless, in
its own process. It signs Ana in, takes her first patient, dials by hand, marks the call
connected, opens the wrap-up and types every field with keys — a callback asked for, the time,
"only I call back" unticked, the notes — then waits until the draft journal on disk holds all of
it (Save is never pressed), prints one line (`TYPED <uid>`) and waits to be killed.

    python -m tests.e2e.typed_console TMP_DIR DATABASE_URL
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from textual.widgets import Checkbox, Input, TextArea

from console.app import OutreachApp
from console.config import DatabaseSettings, LogSettings, Settings, UiSettings
from console.drafts import Draft, DraftStore
from console.screens.wrap_up import WrapUpScreen
from console.services.container import Services
from console.services.store import open_store
from queues.clock import PracticeClock
from queues.identity import database_id
from tests.e2e.helpers import choose_disposition, login, press, settle, type_keys

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas
NOTES = "Call back after 2 pm; her daughter answers"
CALLBACK = "2026-12-03 14:30"  # Thursday, inside her calling window
DISPOSITION = "callback_requested"


def settings(tmp: Path, url: str) -> Settings:
    """What tests.world.make_world gives the app for the same folder and database."""
    return Settings(
        database=DatabaseSettings(url=url),
        ui=UiSettings(drafts_path=str(tmp / "drafts"), idle_lock_minutes=15),
        log=LogSettings(path=str(tmp / "outreach.log")),
    )


def typed_in_full(draft: Draft) -> bool:
    """The journal holds every field as typed."""
    o, form = draft.outcome, draft.form
    return (
        form is not None
        and o.disposition == DISPOSITION
        and o.notes == NOTES
        and form.callback_text == CALLBACK
        and o.callback_mine is False
    )


async def main(tmp: Path, url: str) -> None:
    store = open_store(settings(tmp, url), clock=PracticeClock(NOW))
    app = OutreachApp(Services(store))
    with store.sessions() as session:  # the journal's folder is the database's
        drafts = DraftStore(tmp / "drafts", database_id(session), "ana")
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        await press(pilot, "d")
        await press(pilot, "c")
        await press(pilot, "w")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen), type(wrap)
        await choose_disposition(pilot, DISPOSITION)
        await settle(pilot)
        wrap.query_one("#callback-at", Input).focus()
        await type_keys(pilot, CALLBACK)
        wrap.query_one("#callback-mine", Checkbox).focus()
        await pilot.press("space")
        wrap.query_one("#notes", TextArea).focus()
        await type_keys(pilot, NOTES)
        # Only the journal's own writes, debounced on its thread: no flush, no Save.
        while not any(typed_in_full(d) for d in drafts.drafts()):
            await pilot.pause(0.05)
        print("TYPED", wrap.draft.uid, flush=True)
        await asyncio.Event().wait()  # until kill -9


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
