"""Unlocking an account from the floor (Pilot, SQLite file): five wrong passwords lock Ana out for
15 minutes; Sue, her pharmacy's supervisor, selects the lock on the Sign-ins tab (5), where `u`
Unlock shows in the footer on that row only, confirms, and Ana signs in at once (the place the
failures came from is no longer slowed either). A supervisor of another pharmacy never sees the lock nor the key. The
domain's rule, on SQLite and PostgreSQL: tests/queues/test_unlock_account.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from textual.pilot import Pilot

from console.app import OutreachApp
from console.screens.floor import FloorScreen
from console.screens.outbox import OutboxCountsTable
from console.screens.workspace import WorkspaceScreen
from console.widgets.floor_tables import SignInsTable
from queues.auth import add_user
from queues.store.db import transaction
from queues.store.models import AuditEvent, SignInSource, User
from queues.timeutil import as_utc, utcnow
from tests.conftest import add_pharmacy
from tests.e2e.helpers import floor_world, login, press
from tests.e2e.test_floor_sign_ins import fail_five_times
from tests.world import PASSWORD, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


def footer_actions(app: OutreachApp) -> set[str]:
    """The actions the footer shows now (and the command palette lists: enabled, shown)."""
    return {
        a.binding.action
        for a in app.screen.active_bindings.values()
        if a.binding.show and a.enabled
    }


async def sign_ins_tab(pilot: Pilot[Any]) -> SignInsTable:
    await press(pilot, "5")
    return pilot.app.screen.query_one(SignInsTable)


async def test_a_supervisor_unlocks_her_agent_who_signs_in_at_once(tmp_path: Path) -> None:
    w = floor_world(tmp_path, NOW)
    here = "cli@host7"  # where the failures came from: slowed (Sue's console is another place)
    fail_five_times(w, "ana", here, utcnow())
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")  # locked: the right password is refused
        assert not isinstance(app.screen, WorkspaceScreen)
        await login(pilot, "sue")
        assert isinstance(app.screen, FloorScreen)
        assert "unlock_account" not in footer_actions(app)  # the Queues tab: no lock there
        table = await sign_ins_tab(pilot)
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == [
            "'ana' locked",
            "sign-ins slowed",
        ]
        assert table.selected_key is not None and table.selected_key.startswith("u")
        assert "unlock_account" in footer_actions(app)
        assert "u Unlock" in visible_text(app)
        await press(pilot, "down")  # the slowed place: nothing to unlock
        assert "unlock_account" not in footer_actions(app)
        await press(pilot, "up", "u")
        assert "Unlock ana's account now?" in visible_text(app)
        await press(pilot, "y")
        notes = [f"{n.title}: {n.message}" for n in app._notifications]
        assert "Unlock account: ana is unlocked and can sign in now" in notes[-1], notes
        assert [str(table.get_row_at(0)[0])] == ["none: no account locked, no place slowed"]
        assert "unlock_account" not in footer_actions(app)
        await press(pilot, "L")
        await login(pilot, "ana")  # at once: no lock, no slowing
        assert isinstance(app.screen, WorkspaceScreen)
    with w.store.sessions() as s:
        ana = s.scalars(select(User).where(User.username == "ana")).one()
        assert ana.locked_until is None and ana.failed_sign_ins == 0
        assert s.get(SignInSource, here) is None
        unlocked = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "account_unlocked")
        ).one()
        sue = s.scalar(select(User.id).where(User.username == "sue"))
        assert unlocked.user_id == sue
        assert unlocked.detail["username"] == "ana"
        assert unlocked.detail["unlocked_user_id"] == ana.id
        assert unlocked.detail["source_cleared"] == here


async def test_another_pharmacys_supervisor_has_no_unlock(tmp_path: Path) -> None:
    w = floor_world(tmp_path, NOW)
    fail_five_times(w, "ana", "cli@host7", utcnow())
    with transaction(w.store.sessions) as s:
        add_pharmacy(s, "OK1", state="OK")
        add_user(s, "olga", PASSWORD, "supervisor", ["OK1"])
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "olga")
        table = await sign_ins_tab(pilot)
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == ["sign-ins slowed"]
        assert "unlock_account" not in footer_actions(app)
        await press(pilot, "u")  # nothing happens: no question asked
        assert isinstance(app.screen, FloorScreen)
    with w.store.sessions() as s:
        ana = s.scalars(select(User).where(User.username == "ana")).one()
        assert ana.locked_until is not None and as_utc(ana.locked_until) > utcnow()


async def test_an_admins_floor_covers_every_pharmacy_as_the_cli_does(tmp_path: Path) -> None:
    """queues.access for every door: Adam, an admin assigned to OK1 only, sees TX1's queues and
    its outbox (its refill request) on the floor, as `outreach report` and the CLI let him."""
    w = floor_world(tmp_path, NOW)
    with transaction(w.store.sessions) as s:
        add_pharmacy(s, "OK1", state="OK")
        add_user(s, "adam", PASSWORD, "admin", ["OK1"])
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "adam")
        assert isinstance(app.screen, FloorScreen)
        text = visible_text(app)
        assert "FLOOR OK1, TX1" in text and "TX1 patients" in text and "OK1 patients" in text
        await press(pilot, "O")
        assert not isinstance(app.screen, FloorScreen)
        counts = app.screen.query_one(OutboxCountsTable)
        rows = [[str(c) for c in counts.get_row_at(i)] for i in range(counts.row_count)]
        assert [r[0] for r in rows] == ["OK1", "TX1"]
        assert rows[1][2] == "1"  # TX1's refill request, pending
