"""A Spanish flow's identity check answers the agent in Spanish on screen, through the real app
(issue 21): a wrong birth date reads 'no coincide con el registro', the right one 'identidad
verificada (paciente)', and the script's head says 'identidad verificada'."""

from __future__ import annotations

from pathlib import Path

from console.app import OutreachApp
from tests.e2e.helpers import press
from tests.e2e.test_scripted_call import (
    login_and_take_patient,
    spanish_refill_and_vaccine_world,
    verify_identity,
)


async def test_a_spanish_flows_identity_check_speaks_spanish(tmp_path: Path) -> None:
    app = OutreachApp(spanish_refill_and_vaccine_world(tmp_path).services)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = await login_and_take_patient(pilot)
        assert "identidad no verificada" in panel.shown_text()
        await press(pilot, "d")
        await pilot.press("c")  # connected
        await press(pilot, "right_square_bracket", "1")  # greeting read; the patient is on
        await verify_identity(pilot, panel, "Pat Alvarez", "02/04/1955")  # a day off
        text = panel.shown_text()
        assert "no coincide con el registro" in text, text
        assert "does not match" not in text
        await verify_identity(pilot, panel, "Pat Alvarez", "01/04/1955")
        text = panel.shown_text()
        assert "identidad verificada (paciente)" in text, text
        assert "✓ identidad verificada" in text and "identity verified" not in text
