"""A wrap-up kept on this computer belongs to the database it was typed against (console/drafts.py):
the same agent signing in to another database from the same computer (a demo and a site, two
sites: the same user names, the same patient ids) never sees it reopened nor saved there; a draft
from before drafts were kept per database is taken up only by the database that shows its claim;
a draft of another user id is never saved (it stays, and the agent is told so)."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update
from textual.widgets import TextArea

from console.app import OutreachApp
from console.config import DatabaseSettings
from console.drafts import FormState
from console.screens.workspace import WorkspaceScreen
from console.screens.wrap_up import WrapUpScreen
from console.services.container import Services
from console.services.store import open_store
from queues.errors import NotAllowed
from queues.identity import give_new_id
from queues.store.db import transaction
from queues.store.models import Attempt, DatabaseIdentity
from queues.views.outcome import Outcome
from tests.e2e.helpers import login, press, user_id
from tests.world import PASSWORD, World, make_world

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas
NOTES = "Left a voicemail; try again after 3 pm"
UNSAVED = "was not saved before the console stopped"


def two_databases(tmp_path: Path) -> tuple[World, World]:
    """One computer (one drafts folder), two databases with the same users and patient ids: B is
    made as A was (a copy of it before anyone signed in, with an id of its own, as a database made
    afresh has; cheaper than migrating a second file)."""
    a = make_world(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", NOW, {"Alvarez": 1})
    with sqlite3.connect(tmp_path / "a.db") as live, sqlite3.connect(tmp_path / "b.db") as copy:
        live.backup(copy)
    b_url = f"sqlite:///{tmp_path / 'b.db'}"
    store = open_store(
        dataclasses.replace(a.store.settings, database=DatabaseSettings(url=b_url)),
        migrate=False,
        clock=a.store.clock,
    )
    with transaction(store.sessions) as s:
        s.execute(update(DatabaseIdentity).values(database_id=str(uuid.uuid4())))
    return a, World(store, Services(store), a.patients)


def left_open(w: World, typed_by: int | None = None) -> Outcome:
    """What a console killed with the wrap-up open leaves behind: Ana's claim held on `w`, and the
    wrap-up she typed (not yet on disk: the test puts it where it wants)."""
    ana = w.services.accounts.sign_in("ana", PASSWORD)
    offer = w.services.agent_shift(ana).next_patient()
    assert offer is not None
    return Outcome(
        uid=str(uuid.uuid4()),
        patient_id=offer.claim.patient_id,
        lease_token=offer.claim.lease_token,
        user_id=ana.id if typed_by is None else typed_by,
        disposition="voicemail",
        started_at=NOW,
        ended_at=NOW,
        notes=NOTES,
    )


def messages(app: OutreachApp) -> str:
    return "\n".join(n.message for n in app._notifications)


def stored(w: World) -> list[str]:
    with w.store.sessions() as s:
        return list(s.scalars(select(Attempt.notes)))


async def test_a_draft_is_reopened_and_saved_on_its_own_database_and_by_its_own_user_only(
    tmp_path: Path,
) -> None:
    a, b = two_databases(tmp_path)
    draft = left_open(a)
    a.drafts("ana").save(draft, FormState(suggested="voicemail", seq=1))
    with b.store.sessions() as s:
        ben = user_id(s, "ben")
    # In Ana's folder for B, a draft typed under another user id (her account made again, say).
    others = left_open(b, typed_by=ben)
    b_drafts = b.drafts("ana")
    b_drafts.save(others, FormState(suggested="voicemail", seq=1))
    on_b = OutreachApp(b.services)
    async with on_b.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        assert isinstance(on_b.screen, WorkspaceScreen)  # nothing reopened, nothing to save late
        assert UNSAVED not in messages(on_b)
        assert (  # one: A's draft is not B's to count
            "1 wrap-up draft kept on this computer was typed under another account, not yours: "
            f"not saved; kept in {b_drafts.dir.resolve()}."
        ) in messages(on_b)
    shift = b.services.agent_shift(b.services.accounts.sign_in("ana", PASSWORD))
    with pytest.raises(NotAllowed, match="another account"):
        shift.late_wrap_up(others)
    with pytest.raises(NotAllowed, match="another account"):
        shift.record(others)
    assert stored(b) == []
    assert [d.outcome for d in b_drafts.drafts()] == [others]
    assert [d.outcome for d in a.drafts("ana").drafts()] == [draft]
    on_a = OutreachApp(a.services)
    async with on_a.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")  # her claim is still held here: the form comes back as typed
        wrap = on_a.screen
        assert isinstance(wrap, WrapUpScreen) and wrap.draft.uid == draft.uid
        assert wrap.query_one("#notes", TextArea).text == NOTES
        assert "another account" not in messages(on_a)
        await press(pilot, "ctrl+s")
        assert isinstance(on_a.screen, WorkspaceScreen)
    assert (stored(a), stored(b)) == ([NOTES], [])
    assert a.drafts("ana").drafts() == []


def _legacy(w: World, draft: Outcome) -> Path:
    """The draft in the layout from before drafts were kept per database: <drafts>/<user>/."""
    store = w.drafts("ana")
    store.save(draft, FormState(suggested="voicemail", seq=1))
    legacy = Path(w.store.settings.ui.drafts_path) / "ana" / f"{draft.uid}.json"
    legacy.parent.mkdir(mode=0o700)
    os.replace(store.dir / legacy.name, legacy)
    return legacy


async def test_a_draft_from_before_is_taken_up_only_by_the_database_that_shows_its_claim(
    tmp_path: Path,
) -> None:
    a, b = two_databases(tmp_path)
    draft = left_open(a)
    legacy = _legacy(a, draft)
    before = (legacy.read_bytes(), legacy.stat().st_mtime_ns)
    on_b = OutreachApp(b.services)
    async with on_b.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        assert isinstance(on_b.screen, WorkspaceScreen)
        told = messages(on_b)
        assert (
            "1 wrap-up draft kept on this computer by an earlier version of the console could "
            f"not be matched to this database: not opened here; kept in {legacy.parent}."
        ) in told
        assert UNSAVED not in told
    assert (legacy.read_bytes(), legacy.stat().st_mtime_ns) == before  # untouched
    assert b.drafts("ana").drafts() == []
    on_a = OutreachApp(a.services)
    async with on_a.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")  # Ana's claim of that patient is here: it is this one's
        wrap = on_a.screen
        assert isinstance(wrap, WrapUpScreen) and wrap.draft.uid == draft.uid
        assert wrap.query_one("#notes", TextArea).text == NOTES
        assert "could not be matched" not in messages(on_a)
    assert not legacy.exists()
    assert [d.outcome.uid for d in a.drafts("ana").drafts()] == [draft.uid]


async def test_drafts_under_an_id_the_database_no_longer_has_are_told_and_kept(
    tmp_path: Path,
) -> None:
    a, b = two_databases(tmp_path)  # B: a copy of A at another address, with its own id
    on_a = OutreachApp(a.services)
    async with on_a.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")  # this computer notes where A's id was reached
    draft = left_open(a)
    kept = a.drafts("ana")
    kept.save(draft, FormState(suggested="voicemail", seq=1))
    before = (kept.dir / f"{draft.uid}.json").read_bytes()
    former = "under an id it no longer has"
    on_b = OutreachApp(b.services)
    async with on_b.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")  # the copy: A's draft is A's, nothing to tell
        assert isinstance(on_b.screen, WorkspaceScreen)
        assert former not in messages(on_b)
    with transaction(a.store.sessions) as s:  # `outreach db new-id` run on A itself
        give_new_id(s, by_user_id=user_id(s, "sue"))
    on_a = OutreachApp(a.services)
    async with on_a.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        assert isinstance(on_a.screen, WorkspaceScreen)  # never reopened on the new id
        told = messages(on_a)
        assert (
            "1 wrap-up draft kept on this computer was typed against the database at this "
            f"address under an id it no longer has (given a new one, or made again): not opened "
            f"here; kept in {kept.dir.resolve()}."
        ) in told
        assert UNSAVED not in told
    assert (kept.dir / f"{draft.uid}.json").read_bytes() == before  # untouched
    assert a.drafts("ana").drafts() == [] and stored(a) == []
