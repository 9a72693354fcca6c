"""A prescription with no refills left is a renewal, not a refill: the reason, the script and the
follow-up action say so (issue 21)."""

from __future__ import annotations

import dataclasses

import pytest

from scripts_library.engine import ScriptedCall
from scripts_library.facts import SAMPLE_PATIENT, DueItem
from scripts_library.library import bundled_library

FACTS = dataclasses.replace(SAMPLE_PATIENT, language="en")
LISINOPRIL = DueItem("refill_reminder", "rx:1:2026-12-05", task_id=11, prescription_id=1)  # 2 left
ATORVASTATIN = DueItem("refill_reminder", "rx:2:2026-12-20", task_id=12, prescription_id=2)  # 0


def to_the_section(item: DueItem) -> ScriptedCall:
    call = ScriptedCall.start(bundled_library(), FACTS, [item])
    call.forward()  # greeting
    call.choose(1)  # the patient
    assert call.verify("Rosa Example", "03/14/1950").passed
    call.forward()  # "Thank you, Rosa…"
    return call


def test_no_refills_left_is_worded_and_requested_as_a_renewal() -> None:
    call = to_the_section(ATORVASTATIN)
    said = call.view().text
    assert "no refills left" in said and "renew" in said
    assert "due for a refill" not in said
    call.forward()
    assert "renew" in call.view().text
    assert call.view().choices[0].label == "Yes, ask the prescriber to renew it"
    call.choose(1)
    kinds = [a.kind for a in call.actions()]
    assert kinds == ["renewal_request"], kinds
    assert "refill" not in call.view().text.lower()


@pytest.mark.parametrize("item", [LISINOPRIL])
def test_a_prescription_with_refills_left_is_still_a_refill(item: DueItem) -> None:
    call = to_the_section(item)
    assert "due for a refill" in call.view().text
    call.forward()
    call.choose(1)
    assert [a.kind for a in call.actions()] == ["refill_request"]


def test_a_renewal_after_a_cost_worry_is_still_asked_as_a_renewal() -> None:
    call = to_the_section(ATORVASTATIN)
    call.forward()
    call.choose(3)  # worried about the cost
    call.choose(2)  # no lower-cost search
    assert "renew" in call.view().text and "refill" not in call.view().text
    call.choose(1)
    assert [a.kind for a in call.actions()] == ["renewal_request"]


def test_the_renewal_action_is_labelled_as_one() -> None:
    from console.widgets.script_panel import action_line
    from queues.views.outcome import ActionRequest

    line = action_line(ActionRequest("renewal_request", 2, {"drug": "Atorvastatin 20 mg tablet"}))
    assert line == "Renewal request to the prescriber — Atorvastatin 20 mg tablet"
