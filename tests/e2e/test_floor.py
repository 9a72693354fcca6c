"""The supervisor's floor monitor, driven through the real app with Pilot on a real SQLite file:
each panel, each control (and what an agent's console sees after it), and who may open it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from textual.pilot import Pilot
from textual.widgets import Input, TabbedContent

from console.app import OutreachApp
from console.screens.floor import FloorScreen
from console.screens.prompt import ConfirmScreen, PromptScreen
from console.screens.workspace import WorkspaceScreen
from console.widgets.floor_tables import AgentsTable, CallbacksTable, QueuesTable
from queues.store.db import transaction
from queues.store.models import (
    AgentState,
    Attempt,
    AuditEvent,
    Callback,
    Campaign,
    Phone,
    QueueEntry,
)
from tests.e2e.helpers import floor_world, login, press, settle, until, user_id
from tests.world import World, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


def world(tmp_path: Path) -> World:
    return floor_world(tmp_path, NOW)


def notices(app: OutreachApp) -> str:
    """The toasts the app has put up (Textual draws them in a layer the screenshot may miss)."""
    return "\n".join(f"{n.title} {n.message}" for n in app._notifications)


def rows(table: QueuesTable | AgentsTable | CallbacksTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def select_agent(pilot: Pilot[Any], name: str) -> None:
    """On the supervisor's monitor: the agents tab, refreshed, with the cursor on `name`."""
    await pilot.press("2")
    await press(pilot, "f5")
    agents = pilot.app.screen.query_one(AgentsTable)
    agents.move_cursor(row=[r[0] for r in rows(agents)].index(name))


async def test_supervisor_lands_on_the_floor_with_queues_by_pharmacy_and_campaign(
    tmp_path: Path,
) -> None:
    app = OutreachApp(world(tmp_path).services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "sue")
        assert isinstance(app.screen, FloorScreen)
        table = app.screen.query_one(QueuesTable)
        pharmacy, campaign = rows(table)
        # Three patients, one refill task each, all callable now; one callback an hour late.
        assert pharmacy[:6] == ["TX1 patients", "", "3", "3", "0", "0"]  # open, now, held, later
        assert pharmacy[8] == "1 due (1 late)"
        assert campaign[:2] == ["  Refill reminder", "1"]  # the campaign and its weight
        assert campaign[2:5] == ["3", "3", "0"]
        text = visible_text(app)
        assert "FLOOR TX1" in text and "1 call today" in text
        # The open tab's controls for the selected campaign are in the footer, whole at 80.
        assert "space Pause" in text and "Weight" in text and "L Sign out" in text


async def test_agents_panel_shows_state_and_a_long_wrap_up_stands_out(tmp_path: Path) -> None:
    w = world(tmp_path)
    with transaction(w.store.sessions) as s:
        ana = user_id(s, "ana")
        s.add(AgentState(user_id=ana, state="wrap_up", since=NOW - timedelta(minutes=6)))
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "sue")
        await press(pilot, "2")
        assert app.screen.query_one(TabbedContent).active == "tab-agents"
        agents = {r[0]: r for r in rows(app.screen.query_one(AgentsTable))}
        assert agents["Ana"][1] == "wrap-up"
        assert agents["Ana"][3:5] == ["1", "1"]  # one call, one patient reached
        assert agents["Ana"][5:7] == ["3:00", "1:00"]  # average call and wrap-up
        assert agents["Ana"][7] == "wrap-up 6 min"  # past [floor].wrap_up_alert_minutes (3)
        assert agents["Ben"][1] == "offline"
        text = visible_text(app)
        # Ana's wrap-up, and the world's refill request not delivered 36 minutes on.
        assert "2 need a look" in text and "Ana in wrap-up 6 min" in text


async def test_today_panel_shows_outcomes_reach_and_follow_ups(tmp_path: Path) -> None:
    app = OutreachApp(world(tmp_path).services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "sue")
        await press(pilot, "4")
        text = visible_text(app)
        assert "1 call to 1 patient · 1 reached (100%)" in text
        assert "refill requests 1" in text and "escalations 0" in text
        assert "Reached – completed" in text  # short words beside the chart
        assert "Calls by hour" in text


async def test_a_paused_campaigns_patients_stop_coming_to_an_agent(tmp_path: Path) -> None:
    w = world(tmp_path)
    supervisor, agent = OutreachApp(w.services), OutreachApp(w.services)
    async with supervisor.run_test(size=(80, 24)) as sp, agent.run_test(size=(80, 24)) as ap:
        await login(sp, "sue")
        await login(ap, "ana")
        table = supervisor.screen.query_one(QueuesTable)
        table.move_cursor(row=1)  # the campaign under TX1
        await press(sp, "space")
        assert isinstance(supervisor.screen, ConfirmScreen)
        assert "Its 3 open task(s) leave the queue" in visible_text(supervisor)
        await press(sp, "y")
        # The pause rebuilds the queues, then the monitor recounts: wait for what it shows.
        await until(
            sp,
            lambda: (
                rows(supervisor.screen.query_one(QueuesTable))[1][:3]
                == ["  Refill reminder", "PAUSED", "0 +3"]
            ),
            "the paused campaign on the monitor",
        )
        await press(ap, "r")
        assert "No patient is callable right now" in visible_text(agent)
        # Resume: the work comes back.
        supervisor.screen.query_one(QueuesTable).move_cursor(row=1)
        await press(sp, "space", "y")
        await until(sp, lambda: "PAUSED" not in visible_text(supervisor), "the resumed campaign")
    with w.store.sessions() as s:
        actions = s.scalars(
            select(AuditEvent.action).where(AuditEvent.action.like("campaign_%"))
        ).all()
        assert actions == ["campaign_paused", "campaign_resumed"]


async def test_a_campaign_every_pharmacy_shares_is_refused_before_any_question(
    tmp_path: Path,
) -> None:
    """A supervisor is told at once that a shared campaign is an admin's, not asked to confirm a
    pause or a weight change that would then be refused."""
    w = world(tmp_path)
    with transaction(w.store.sessions) as s:
        s.execute(update(Campaign).values(pharmacy_id=None))
    supervisor = OutreachApp(w.services)
    async with supervisor.run_test(size=(80, 24)) as sp:
        await login(sp, "sue")
        screen = supervisor.screen
        screen.query_one(QueuesTable).move_cursor(row=1)
        for key in ("space", "plus"):
            await press(sp, key)
            assert supervisor.screen is screen, f"{key} opened {supervisor.screen}"
        assert notices(supervisor).count("runs for every pharmacy") == 2
    with w.store.sessions() as s:
        assert s.scalars(select(Campaign.active)).all() == [True]
        assert s.scalars(select(Campaign.weight)).all() == [1.0]


async def test_a_released_lease_goes_back_to_the_queue(tmp_path: Path) -> None:
    w = world(tmp_path)
    supervisor, ana, ben = (OutreachApp(w.services) for _ in range(3))
    async with (
        supervisor.run_test(size=(120, 40)) as sp,
        ana.run_test(size=(120, 40)) as a,
        ben.run_test(size=(120, 40)) as b,
    ):
        await login(sp, "sue")
        await login(a, "ana")
        await login(b, "ben")
        await press(a, "r")
        assert "Pat Alvarez" in visible_text(ana)
        await select_agent(sp, "Ana")
        await press(sp, "x")
        assert isinstance(supervisor.screen, ConfirmScreen)
        await press(sp, "y")
        assert "Ana's patient is back in the queue" in notices(supervisor)
        await press(b, "r")
        assert "Pat Alvarez" in visible_text(ben)
    with w.store.sessions() as s:
        assert s.get_one(QueueEntry, w.patients["Alvarez"]).holder_id == user_id(s, "ben")
        assert s.scalars(
            select(AuditEvent.action).where(AuditEvent.action == "lease_released")
        ).all() == ["lease_released"]


async def test_weight_and_log_out_controls_are_applied_and_audited(tmp_path: Path) -> None:
    w = world(tmp_path)
    supervisor, agent = OutreachApp(w.services), OutreachApp(w.services)
    async with supervisor.run_test(size=(120, 40)) as sp, agent.run_test(size=(80, 24)) as ap:
        await login(ap, "ana")
        await press(ap, "r")  # ana is working, so she can be asked to log out
        await login(sp, "sue")
        supervisor.screen.query_one(QueuesTable).move_cursor(row=1)
        await press(sp, "plus")
        assert isinstance(supervisor.screen, ConfirmScreen)
        assert "from 1 to 1.1" in visible_text(supervisor)
        await press(sp, "y")
        assert rows(supervisor.screen.query_one(QueuesTable))[1][:2] == ["  Refill reminder", "1.1"]
        await select_agent(sp, "Ana")
        await press(sp, "o", "y")
        assert "log-out asked" in visible_text(supervisor)
    with w.store.sessions() as s:
        assert s.scalars(select(Campaign.weight)).one() == 1.1
        state = s.scalars(select(AgentState).where(AgentState.state != "offline")).one()
        assert state.logout_requested_at is not None
        actions = set(s.scalars(select(AuditEvent.action)))
        assert {"campaign_weight", "agent_logout_requested"} <= actions


async def test_callback_reassigned_from_the_callbacks_panel(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "sue")
        await press(pilot, "3")
        (callback,) = rows(app.screen.query_one(CallbacksTable))
        assert callback[1:3] == ["TX1", f"#{w.patients['Brown']}"]
        assert callback[3].endswith("overdue") and callback[4] == "Ana"
        await press(pilot, "a")
        assert isinstance(app.screen, PromptScreen)
        await press(pilot, *"ben", "enter")
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "y")
        (callback,) = rows(app.screen.query_one(CallbacksTable))
        assert callback[4] == "Ben"
    with w.store.sessions() as s:
        ben = user_id(s, "ben")
        assert s.scalars(select(Callback.owner_id)).one() == ben


async def test_do_not_call_a_number_from_the_monitor(tmp_path: Path) -> None:
    w = world(tmp_path)
    with w.store.sessions() as s:
        number = s.scalars(
            select(Phone.number).where(Phone.patient_id == w.patients["Alvarez"])
        ).first()
    assert number is not None
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "sue")
        await press(pilot, "n")
        assert isinstance(app.screen, PromptScreen)
        await press(pilot, *number, "enter")
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "y")
        assert f"{number} is now do-not-call" in notices(app)
        # A typo gets a clear message and changes nothing.
        await press(pilot, "n")
        await press(pilot, *"+19995550000", "enter", "y")
        assert "no patient of your pharmacies has the number +19995550000" in notices(app)
    with w.store.sessions() as s:
        assert s.scalars(select(Phone.do_not_call).where(Phone.number == number)).one()


async def test_refresh_updates_rows_in_place_and_keeps_the_selection(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "sue")
        await press(pilot, "2")
        table = app.screen.query_one(AgentsTable)
        table.move_cursor(row=1)
        keys = [k.value for k in table.rows]
        with transaction(w.store.sessions) as s:
            ben = user_id(s, "ben")
            s.add(AgentState(user_id=ben, state="ready", since=NOW))
        await press(pilot, "f5")
        assert app.screen.query_one(AgentsTable) is table
        assert [k.value for k in table.rows] == keys
        assert table.cursor_row == 1 and rows(table)[1][1] == "ready"


async def test_an_agent_cannot_open_the_monitor(tmp_path: Path) -> None:
    app = OutreachApp(world(tmp_path).services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "ana")
        assert isinstance(app.screen, WorkspaceScreen)
        assert app.user is not None
        # Even handed the screen directly, it refuses and signs the agent out.
        app.switch_screen(FloorScreen(app.user))
        await settle(pilot)
        assert not isinstance(app.screen, FloorScreen)
        assert "Sign in to start your shift" in visible_text(app)


async def test_supervisor_saves_the_program_report_from_the_monitor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the terminal console saves reports under ./var/reports
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "sue")
        await press(pilot, "R")
        assert isinstance(app.screen, PromptScreen)
        app.screen.query_one(Input).value = "TX1 2026-10-01 2026-12-02 csv"
        await press(pilot, "enter")
        assert "Report report-TX1-2026-10-01-2026-12-02.csv saved" in notices(app)
    saved = tmp_path / "var" / "reports" / "report-TX1-2026-10-01-2026-12-02.csv"
    text = saved.read_text()
    assert "TX1" in text
    with w.store.sessions() as s:
        exports = s.scalars(select(AuditEvent).where(AuditEvent.action == "export")).all()
        assert [e.detail["format"] for e in exports] == ["csv"]


def _weight(w: World) -> float:
    with w.store.sessions() as s:
        return float(s.scalars(select(Campaign.weight)).one())


async def test_a_weight_is_typed_and_the_steps_always_get_back_to_it(tmp_path: Path) -> None:
    """`w` types a weight; `+`/`-` step by a tenth onto the tenths grid, so `+` then `-` returns
    to 1.1 (a step of 0.5 from 1.1 never could). Each change asks once."""
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "sue")
        app.screen.query_one(QueuesTable).move_cursor(row=1)
        await press(pilot, "w")
        assert isinstance(app.screen, PromptScreen)
        app.screen.query_one(Input).value = "1.1"
        await press(pilot, "enter")
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "y")
        assert _weight(w) == 1.1
        for key, expected in (("plus", 1.2), ("minus", 1.1), ("minus", 1.0), ("plus", 1.1)):
            app.screen.query_one(QueuesTable).move_cursor(row=1)
            await press(pilot, key)
            assert isinstance(app.screen, ConfirmScreen), key
            await press(pilot, "y")
            assert _weight(w) == expected, key
        await press(pilot, "w")
        app.screen.query_one(Input).value = "eleven"
        await press(pilot, "enter")
        assert "'eleven' is not a number" in notices(app)
        assert _weight(w) == 1.1
    with w.store.sessions() as s:
        changes = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "campaign_weight").order_by(AuditEvent.id)
        ).all()
        assert [e.detail["to"] for e in changes] == [1.1, 1.2, 1.1, 1.0, 1.1]


async def test_no_to_any_control_changes_nothing_and_audits_nothing(tmp_path: Path) -> None:
    w = world(tmp_path)
    supervisor, agent = OutreachApp(w.services), OutreachApp(w.services)
    async with supervisor.run_test(size=(120, 40)) as sp, agent.run_test(size=(80, 24)) as ap:
        await login(ap, "ana")
        await press(ap, "r")
        await login(sp, "sue")
        for keys in (("space",), ("plus",), ("minus",)):
            supervisor.screen.query_one(QueuesTable).move_cursor(row=1)
            await press(sp, *keys)
            assert isinstance(supervisor.screen, ConfirmScreen), keys
            await press(sp, "n")
        for key in ("x", "o"):
            await select_agent(sp, "Ana")
            await press(sp, key)
            assert isinstance(supervisor.screen, ConfirmScreen), key
            await press(sp, "n")
        await press(sp, "3", "a", *"ben", "enter")
        assert isinstance(supervisor.screen, ConfirmScreen)
        await press(sp, "n", "n", *"+12145551000", "enter")
        assert isinstance(supervisor.screen, ConfirmScreen)
        await press(sp, "escape")
    with w.store.sessions() as s:
        controls = {
            "campaign_paused",
            "campaign_weight",
            "lease_released",
            "agent_logout_requested",
            "callback_reassigned",
            "do_not_call_added",
        }
        assert not controls & set(s.scalars(select(AuditEvent.action)))
        assert s.scalars(select(Campaign.weight)).one() == 1.0


async def test_the_report_dialogs_default_is_made_by_enter_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "sue")
        await press(pilot, "R")
        assert isinstance(app.screen, PromptScreen)
        assert "Enter alone: all 2026-10-01 2026-12-02 html" in app.screen.question
        await press(pilot, "enter")
        await until(pilot, lambda: "saved to" in notices(app), "the report's notice")
    saved = tmp_path / "var" / "reports" / "report-all-2026-10-01-2026-12-02.html"
    assert f"saved to {saved.resolve()}" in notices(app)
    assert "Patients reached" in saved.read_text()


async def test_columns_keep_their_width_when_a_campaign_is_paused(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "sue")
        table = app.screen.query_one(QueuesTable)
        before = [c.get_render_width(table) for c in table.ordered_columns]
        table.move_cursor(row=1)
        await press(pilot, "space", "y")
        await until(
            pilot, lambda: rows(table)[1][1] == "PAUSED", "the paused campaign on the monitor"
        )
        assert [c.get_render_width(table) for c in table.ordered_columns] == before
        assert "Oldest due" in visible_text(app)


async def test_the_floor_marks_line_failures_and_follow_ups_not_delivered(tmp_path: Path) -> None:
    w = world(tmp_path)
    with transaction(w.store.sessions) as s:
        ana = user_id(s, "ana")
        for n, status in enumerate((503, 408, 503)):
            started = NOW - timedelta(minutes=30 - n)
            s.add(
                Attempt(
                    uid=str(uuid.uuid4()),
                    patient_id=w.patients["Alvarez"],
                    user_id=ana,
                    started_at=started,
                    ended_at=started,
                    disposition="line_failed",
                    call_result="failed",
                    sip_status=status,
                )
            )
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "sue")
        text = visible_text(app)
        assert "3 line failures today, last SIP 503" in text
        assert "1 follow-up not delivered" in text  # the refill request of 36 minutes ago
