"""A scripted call through the real console (Pilot, real SQLite file): a Spanish-speaking patient
due for a refill and the shingles vaccine, greeting to wrap-up; and a console killed mid-flow that
finds the step again."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select, update
from textual.widgets import Input

from console.app import OutreachApp
from console.screens.workspace import WorkspaceScreen
from console.screens.wrap_up import WrapUpScreen
from console.widgets.script_panel import ScriptPanel
from queues.building.build import build_queues
from queues.store.db import transaction
from queues.store.models import (
    Attempt,
    Campaign,
    FollowUpAction,
    Immunization,
    Patient,
    Prescription,
)
from tests.e2e.helpers import login, press, settle
from tests.world import World, make_world, visible_text

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # Wednesday 10:00 in Dallas


def spanish_refill_and_vaccine_world(tmp_path: Path) -> World:
    """Pat Alvarez (born 1955-04-01, 71), Spanish, a refill due and only the shingles vaccine."""
    w = make_world(tmp_path, f"sqlite:///{tmp_path / 'scripted.db'}", NOW, {"Alvarez": 2})
    patient_id = w.patients["Alvarez"]
    with transaction(w.store.sessions) as s:
        s.execute(update(Patient).where(Patient.id == patient_id).values(language="es"))
        pharmacy_id = s.scalar(select(Patient.pharmacy_id).where(Patient.id == patient_id))
        s.add(
            Campaign(pharmacy_id=pharmacy_id, kind="vaccine", name="Vacunas", script_id="vaccines")
        )
        s.add_all(
            [
                Immunization(
                    patient_id=patient_id, vaccine="pneumococcal", given_on=date(2021, 5, 1)
                ),
                Immunization(
                    patient_id=patient_id, vaccine="influenza", given_on=date(2026, 10, 1)
                ),
            ]
        )
        s.flush()
        build_queues(s, NOW)
    return w


async def login_and_take_patient(pilot) -> ScriptPanel:  # type: ignore[no-untyped-def]
    await login(pilot, "ana")
    assert isinstance(pilot.app.screen, WorkspaceScreen)
    await press(pilot, "r")
    panel = pilot.app.screen.query_one(ScriptPanel)
    assert panel.call is not None
    return panel


async def verify_identity(pilot, panel: ScriptPanel, name: str, born: str) -> None:  # type: ignore[no-untyped-def]
    panel.query_one("#verify-name", Input).value = name
    await pilot.press("enter")  # the name field has focus; Enter moves to the birth date
    panel.query_one("#verify-dob", Input).value = born
    await press(pilot, "enter")


async def test_spanish_refill_and_vaccine_call_from_greeting_to_wrap_up(tmp_path: Path) -> None:
    w = spanish_refill_and_vaccine_world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = await login_and_take_patient(pilot)
        assert [s.flow_id for s in panel.call.plan.segments] == [  # type: ignore[union-attr]
            "call_opening",
            "refill_reminder",
            "vaccine_zoster",
            "call_closing",
        ]
        assert "¿Podría hablar con Pat Alvarez, por favor?" in panel.shown_text()
        assert "Lisinopril" not in panel.shown_text()
        # The first step: Forward works, Back has nowhere to go and is not offered.
        assert "[ Back" not in visible_text(app) and "] Fwd" in visible_text(app)
        await press(pilot, "d")  # checked again, then dialed
        await pilot.press("c")  # connected
        await press(pilot, "right_square_bracket")  # greeting read: who is on the line?
        assert "¿Quién está en la línea?" in panel.shown_text()
        await press(pilot, "1")  # the patient
        # A wrong birth date is refused and health information stays hidden.
        await verify_identity(pilot, panel, "Pat Alvarez", "02/04/1955")
        assert "no coincide con el registro" in panel.shown_text()  # in the call's language
        assert panel.call is not None and not panel.call.verified
        await verify_identity(pilot, panel, "pat álvarez", "01/04/1955")  # day first in Spanish
        assert "identidad verificada (paciente)" in panel.shown_text()
        await press(pilot, "right_square_bracket")  # "Gracias, Pat..." → the refill section
        text = panel.shown_text()
        assert "Le toca resurtir Lisinopril 10 mg tablet" in text
        assert "2/4 Recordatorio de resurtido" in text
        await press(pilot, "right_square_bracket", "1")  # refill as usual
        assert "Refill request — Lisinopril 10 mg tablet" in panel.shown_text()
        await press(pilot, "1", "right_square_bracket")  # pick up; "the pharmacy will let you know"
        assert "vacuna contra el herpes zóster" in panel.shown_text()
        await press(pilot, "right_square_bracket", "1", "right_square_bracket")  # yes, interested
        assert "¿Hay algo más en que le pueda ayudar hoy?" in panel.shown_text()
        await press(pilot, "2")  # nothing else: the close
        assert "End of script — suggested: Reached – call completed." in panel.shown_text()
        await press(pilot, "w")
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        chosen = str(wrap.query_one("#disposition-chosen").render())
        assert chosen == "Chosen: Reached – call completed (suggested)"
        text = visible_text(app)
        assert "✓ Refill request — Lisinopril 10 mg tablet" in text
        assert "✓ Vaccine interest — shingles vaccine" in text  # words, not a code
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, WorkspaceScreen)
    with w.store.sessions() as s:
        attempt = s.scalars(select(Attempt)).one()
        assert attempt.disposition == "completed"
        assert attempt.script_id == "refill_reminder"
        answers = attempt.answers
        assert answers["language"] == "es" and answers["verified_as"] == "patient"
        assert answers["call"]["reached"] == "patient"
        sections = {sec["flow"]: sec["answers"] for sec in answers["sections"]}
        assert sections["refill_reminder"] == {"refill.as_usual": "yes", "refill.pickup": "pickup"}
        assert sections["vaccine_zoster"] == {"vaccine.interest": "yes"}
        actions = s.scalars(select(FollowUpAction).order_by(FollowUpAction.id)).all()
        assert [a.kind for a in actions] == ["refill_request", "vaccine_interest"]
        rx = s.scalar(
            select(Prescription.id).where(Prescription.patient_id == w.patients["Alvarez"])
        )
        assert actions[0].prescription_id == rx and actions[0].attempt_id == attempt.id
        assert actions[1].detail["vaccine"] == "zoster"
    assert not list(w.drafts("ana", scripts=True).dir.glob("*.json"))  # draft cleared


async def test_a_console_killed_mid_flow_resumes_at_the_same_step(tmp_path: Path) -> None:
    w = spanish_refill_and_vaccine_world(tmp_path)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = await login_and_take_patient(pilot)
        await press(pilot, "right_square_bracket", "1")
        await verify_identity(pilot, panel, "Pat Alvarez", "01/04/1955")
        await press(pilot, "right_square_bracket", "right_square_bracket", "3")  # cost worry
        assert panel.call is not None and panel.call.step.id == "cost"
        await press(pilot, "l")  # the agent switched to English mid-call
        assert "lower-cost option" in panel.shown_text()
        # The console dies here: no wrap-up, nothing but what each move already saved.
    drafts = list(w.drafts("ana", scripts=True).dir.glob("*.json"))
    assert len(drafts) == 1
    restarted = OutreachApp(w.services)
    async with restarted.run_test(size=(120, 40)) as pilot:
        panel = await login_and_take_patient(pilot)
        await settle(pilot)
        assert panel.call is not None and panel.call.step.id == "cost"
        text = panel.shown_text()
        assert "Resumed where the script stopped." in text
        assert "lower-cost option" in text and "✓ identity verified" in text
        assert "Refill reminder · as usual: Worried about the cost" in text
        await press(pilot, "left_square_bracket")  # back: the earlier answer is still there
        assert panel.call.step.id == "as_usual" and panel.view is not None
        assert panel.view.answer == "cost"


async def test_a_script_step_moves_and_is_drawn_at_80x24_and_120x40(tmp_path: Path) -> None:
    """Forward draws the next step on screen and back the one before, at both supported sizes.
    How fast (budget 50 ms a step) is measured by bench/script_render.py, not asserted here."""
    for width, height in ((80, 24), (120, 40)):
        where = tmp_path / f"{width}x{height}"
        where.mkdir()
        app = OutreachApp(spanish_refill_and_vaccine_world(where).services)
        async with app.run_test(size=(width, height)) as pilot:
            panel = await login_and_take_patient(pilot)
            await press(pilot, "right_square_bracket", "1")
            await verify_identity(pilot, panel, "Pat Alvarez", "01/04/1955")
            assert panel.call is not None
            first, shown = panel.call.step.id, panel.shown_text()
            panel.forward()
            await settle(pilot)
            second, moved = panel.call.step.id, panel.shown_text()
            assert second != first and moved != shown, (width, moved)
            panel.back()
            await settle(pilot)
            assert panel.call.step.id == first and panel.shown_text() != moved, width
