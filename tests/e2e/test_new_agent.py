"""What a new agent tripped on, read at 80x24 and 120x40 through the real app (issue 21)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select
from textual.widgets import Footer, Input, Static
from textual.widgets._footer import FooterKey

from console.app import OutreachApp
from console.screens.workspace import WorkspaceScreen
from console.widgets.medications import MedicationsTable
from queues.store.db import transaction
from queues.store.models import Campaign, Task
from tests.e2e.helpers import login, press
from tests.world import World, make_world, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


def world(tmp_path: Path) -> World:
    return make_world(tmp_path, f"sqlite:///{tmp_path / 'new.db'}", NOW, {"Alvarez": 1})


def add_heavier_reason(w: World) -> None:
    """A second reason to call Pat Alvarez that weighs more than the refill (build's score)."""
    with transaction(w.store.sessions) as s:
        refill = s.scalars(select(Task)).one()
        campaign = Campaign(
            pharmacy_id=s.get_one(Campaign, refill.campaign_id).pharmacy_id,
            kind="vaccine",
            name="Vaccine outreach",
            script_id="vaccine",
        )
        s.add(campaign)
        s.flush()
        s.add(
            Task(
                patient_id=refill.patient_id,
                campaign_id=campaign.id,
                subject="vaccine:influenza",
                reason="No flu shot recorded this season",
                due_on=date(2026, 12, 1),
                priority_parts={"program_weight": 3.0, "score": 99.0},
                created_at=NOW,
                score=99.0,
            )
        )


async def take_patient(app: OutreachApp) -> WorkspaceScreen:
    screen = app.screen
    assert isinstance(screen, WorkspaceScreen)
    return screen


async def test_reasons_come_by_weight_and_score_parts_only_in_the_detail_view(
    tmp_path: Path,
) -> None:
    w = world(tmp_path)
    add_heavier_reason(w)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        card = visible_text(app)
        assert card.index("No flu shot") < card.index("Refill reminder"), card
        assert "score 99" not in card and "weight 3" not in card
        await press(pilot, "i")  # Details
        card = visible_text(app)
        assert "score 99" in card
        assert app.screen.query_one(MedicationsTable).every_column


async def test_medications_every_column_at_120_the_main_ones_at_80_the_rest_one_key_away(
    tmp_path: Path,
) -> None:
    w = world(tmp_path)
    for size in ((120, 40), (80, 24)):
        app = OutreachApp(w.services)
        async with app.run_test(size=size) as pilot:
            await login(pilot, "ana")
            await press(pilot, "r")
            table = app.screen.query_one(MedicationsTable)
            labels = [str(c.label) for c in table.columns.values()]
            if size == (120, 40):
                assert labels == ["Medication", "Runs out", "Refills", "Last fill", "Days", "Class"]
                # Every column inside the table's width: none is scrolled off to the right.
                assert table.virtual_size.width <= table.scrollable_content_region.width
            else:
                assert labels == ["Medication", "Runs out", "Refills"]
                assert table.virtual_size.width <= table.scrollable_content_region.width
                await press(pilot, "i")
                labels = [str(c.label) for c in table.columns.values()]
                assert labels[-2:] == ["Days", "Class"]
            assert "Lisinopril 10 mg" in visible_text(app)
            await press(pilot, "escape")
            # Let the patient go for the next size: the lease is released on sign-out is not
            # possible while holding; a new app on the same world resumes the same claim.


async def test_the_status_line_says_whose_time_and_fits_80_columns(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "ana")
        line = str(app.screen.query_one("#status-line", Static).render())
        assert "pharmacy time Wed 10:00 CST" in line
        await press(pilot, "r")
        line = str(app.screen.query_one("#status-line", Static).render())
        assert "patient's time Wed 10:00 CST (practice clock)" in line
        assert len(line) <= 80 - 2, line  # its padding: the whole line is seen
        assert line in visible_text(app)


async def test_the_footer_offers_only_keys_that_work_now(tmp_path: Path) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        footer = app.screen.query_one(Footer)
        keys = {k.action for k in footer.query(FooterKey)}
        assert "ready" in keys and "dial" not in keys and "details" not in keys
        await press(pilot, "r")
        keys = {k.action for k in footer.query(FooterKey)}
        # Holding a patient: Ready/next does nothing until the wrap-up is saved.
        assert "ready" not in keys
        assert {"dial", "details", "wrap_up"} <= keys
        # The script's Back does nothing at its first step.
        assert "script_back" not in keys, keys


async def test_a_spanish_patients_birth_date_is_shown_and_checked_day_first(
    tmp_path: Path,
) -> None:
    """The card shows the birth date day first for a Spanish speaker; the verify prompt shows the
    order the check accepts; a date the check refuses is answered in Spanish, in the same words."""
    from console.widgets.script_panel import ScriptPanel
    from tests.e2e.test_scripted_call import (
        login_and_take_patient,
        spanish_refill_and_vaccine_world,
        verify_identity,
    )

    app = OutreachApp(spanish_refill_and_vaccine_world(tmp_path).services)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = await login_and_take_patient(pilot)
        card = visible_text(app)
        assert "born 01/04/1955" in card, card  # Pat Alvarez, born 1 April 1955
        await press(pilot, "d")
        await pilot.press("c")
        await press(pilot, "right_square_bracket", "1")
        dob = panel.query_one("#verify-dob", Input)
        assert "DD/MM/AAAA" in dob.placeholder, dob.placeholder
        await verify_identity(pilot, panel, "Pat Alvarez", "04/31/1955")  # month first: refused
        text = panel.shown_text()
        assert "no es una fecha como DD/MM/AAAA" in text, text
        assert isinstance(panel, ScriptPanel) and not panel.call.verified  # type: ignore[union-attr]
        await verify_identity(pilot, panel, "Pat Alvarez", "01/04/1955")
        assert "identidad verificada" in panel.shown_text()


async def test_a_callback_is_picked_from_the_patients_next_open_times_and_never_outside_them(
    tmp_path: Path,
) -> None:
    """The wrap-up offers the next open times in the patient's time (Dallas, CST) with a placeholder
    that is one of them (never a past date); a typed time outside the calling window is refused
    naming the next open time; a picked one is saved."""
    from console.screens.wrap_up import WrapUpScreen
    from queues.store.models import Callback
    from tests.e2e.helpers import choose_disposition

    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r", "d")
        await press(pilot, "c", "w")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        await choose_disposition(pilot, "callback_requested")
        text = visible_text(app)
        assert "Callback (patient's time, CST)" in text
        for offered in (
            "Today Wed Dec 02 11:00 CST",
            "Today Wed Dec 02 14:00 CST",
            "Tomorrow Thu Dec 03 10:00 CST",
        ):
            assert offered in text, text
        field = wrap.query_one("#callback-at", Input)
        assert field.placeholder == "2026-12-02 11:00"  # the first open time, after NOW
        field.value = "2026-12-02 22:00"  # Wednesday night: past federal hours
        await press(pilot, "ctrl+s")
        assert app.screen is wrap
        error = str(wrap.query_one("#wrap-up-error", Static).content)
        assert "Callback time: Wed Dec 02 22:00 CST is outside the patient's calling" in error
        assert "The next open time is Thu Dec 03 08:00 CST." in error
        assert "Callback time: Wed Dec 02 22:00 CST" in visible_text(app)
        wrap.query_one("#callback-slots").focus()
        await press(pilot, "down", "down", "enter")  # Tomorrow 10:00
        assert field.value == "2026-12-03 10:00"
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, WorkspaceScreen)
    with w.store.sessions() as s:
        callback = s.scalars(select(Callback)).one()
        assert callback.due_at.replace(tzinfo=UTC) == datetime(2026, 12, 3, 16, 0, tzinfo=UTC)


async def test_a_prescription_with_no_refills_left_is_shown_as_a_renewal(tmp_path: Path) -> None:
    from queues.store.models import Prescription

    w = world(tmp_path)
    with transaction(w.store.sessions) as s:
        for rx in s.scalars(select(Prescription)):
            rx.refills_left = 0
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        card = visible_text(app)
        assert "Renewal needed (no refills left):" in card, card
        assert "Refill reminder:" not in card


async def test_at_80x24_the_wrap_ups_buttons_and_callback_picker_fit(tmp_path: Path) -> None:
    from textual.widgets import Button

    from console.screens.wrap_up import WrapUpScreen
    from tests.e2e.helpers import choose_disposition

    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r", "d")
        await press(pilot, "c", "w")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        await choose_disposition(pilot, "callback_requested")
        screen = wrap.region
        for button in wrap.query(Button):
            assert screen.contains_region(button.region), (button.id, button.region)
        picker = wrap.query_one("#callback-slots")
        assert picker.region.height >= 3 and screen.contains_region(picker.region)
        assert screen.contains_region(wrap.query_one("#callback-at").region)
        text = visible_text(app)
        assert "Save (ctrl+s)" in text and "Back to call (esc)" in text
        assert "Today Wed Dec 02 11:00 CST" in text
        # A refused time's message (three lines here) leaves the buttons on screen.
        wrap.query_one("#callback-at", Input).value = "2026-12-02 22:00"
        await press(pilot, "ctrl+s")
        text = visible_text(app)
        assert "outside the patient's calling" in text
        assert "Save (ctrl+s)" in text and "Back to call (esc)" in text


async def test_a_refill_reason_names_the_drug_and_the_days_as_an_agent_says_them(
    tmp_path: Path,
) -> None:
    w = world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        await press(pilot, "r")
        card = visible_text(app)
        # Pat Alvarez's Lisinopril runs out tomorrow (tests/world.py), and it has refills left.
        assert "Lisinopril runs out in 1 day — refill" in card, card
        assert "day(s)" not in card
