"""The call-flow engine: every step kind, bundled calls, back/forward, resume, privacy."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import pytest

from scripts_library.engine import AnswerError, ScriptedCall, parse_date, same_name
from scripts_library.facts import SAMPLE_PATIENT, DueItem, PatientFacts
from scripts_library.library import Library
from scripts_library.placeholders import PrivacyViolation
from tests.scripts_library.helpers import CLOSING, GREETING, SECTION, write_flow, write_library

FACTS = dataclasses.replace(SAMPLE_PATIENT, language="en")
REFILL = DueItem("refill_reminder", "rx:1:2026-12-05", task_id=11, prescription_id=1)


@pytest.fixture
def library(tmp_path: Path) -> Library:
    return write_library(tmp_path, kinds=SECTION)


def verified_call(library: Library, facts: PatientFacts = FACTS) -> ScriptedCall:
    call = ScriptedCall.start(library, facts, [REFILL])
    call.forward()
    call.choose(1)
    assert call.verify("Rosa Example", "1950-03-14").passed
    return call


def test_say_steps_fill_in_the_patients_data_in_the_call_language(library: Library) -> None:
    call = ScriptedCall.start(library, FACTS, [REFILL])
    assert call.view().text == "Hello Rosa, this is Sample Pharmacy."
    call.switch_language("es")
    assert call.view().text == "Hola Rosa, le llamamos de Sample Pharmacy."
    spanish = ScriptedCall.start(library, dataclasses.replace(FACTS, language="es"), [REFILL])
    assert spanish.view().language == "es"


def test_every_answer_kind_is_checked_and_recorded_under_its_key(library: Library) -> None:
    call = verified_call(library)
    assert call.view().text == "About Lisinopril 10 mg tablet, out on December 5."
    call.forward()
    with pytest.raises(AnswerError, match="at most 90"):
        call.answer("120")
    with pytest.raises(AnswerError, match="not a number"):
        call.answer("a few")
    assert call.step.id == "pills"  # a refused answer changes nothing
    call.answer("3")
    with pytest.raises(AnswerError, match="not a date"):
        call.answer("yesterday")
    call.answer("12/01/2026")  # month first in English
    with pytest.raises(AnswerError, match="enter an answer"):
        call.answer("  ")
    call.answer("dizzy in the morning")
    assert [c.label for c in call.view().choices] == ["Yes", "No"]
    call.choose(1)
    answers = call.path_answers()["rx:1:2026-12-05"]
    assert answers == {
        "pills_left": 3,
        "last_dose": "2026-12-01",
        "note": "dizzy in the morning",
        "refill": "yes",
    }


def test_branch_and_action_steps_turn_answers_into_follow_up_actions(library: Library) -> None:
    call = verified_call(library)
    call.forward()
    call.answer("3")
    call.answer("2026-12-01")
    call.answer("none")
    call.choose(1)
    assert call.step.id == "done"
    kinds = [(a.kind, a.prescription_id) for a in call.actions()]
    # 76 years old with 3 pills left: escalated as well as requested.
    assert kinds == [("pharmacist_escalation", 1), ("refill_request", 1)]
    escalation = call.actions()[0]
    assert escalation.detail["left"] == "3" and escalation.detail["task_id"] == 11
    assert call.actions()[1].detail["drug"] == "Lisinopril 10 mg tablet"


def test_back_undoes_an_action_and_forward_restores_it_without_losing_answers(
    library: Library,
) -> None:
    call = verified_call(library)
    call.forward()
    call.answer("40")
    call.answer("2026-12-01")
    call.answer("none")
    call.choose(1)
    assert [a.kind for a in call.actions()] == ["refill_request"]
    assert call.back()  # past the auto steps, to the question
    assert call.step.id == "refill" and call.actions() == ()
    assert call.view().answer == "yes"
    assert call.back() and call.back() and call.step.id == "since"
    assert call.view().can_forward
    for _ in range(3):
        assert call.forward()
    assert call.step.id == "done"
    assert [a.kind for a in call.actions()] == ["refill_request"]
    assert call.path_answers()["rx:1:2026-12-05"]["pills_left"] == 40


def test_identity_check_accepts_the_same_name_and_birth_date_however_written() -> None:
    assert same_name("  rosa   EXAMPLE ", "Rosa Example")
    assert same_name("Example, Rosa", "Rosa Example")
    assert same_name("José Núñez", "Jose Nunez")
    assert not same_name("Rosa", "Rosa Example")
    assert parse_date("03/14/1950", "en") == date(1950, 3, 14)
    assert parse_date("14/03/1950", "es") == date(1950, 3, 14)
    with pytest.raises(AnswerError):
        parse_date("14/03/1950", "en")


def test_failed_identity_check_allows_the_set_tries_then_takes_the_failed_path(
    library: Library,
) -> None:
    call = ScriptedCall.start(library, FACTS, [REFILL])
    call.forward()
    call.choose(1)
    first = call.verify("Rosa Example", "1950-03-15")
    assert not first.passed and not first.done and "1 more try" in first.message
    assert call.step.id == "verify"
    second = call.verify("Rose Sample", "1950-03-14")
    assert second.done and not second.passed
    assert call.step.id == "sorry" and call.suggested_disposition == "refused"
    assert not call.verified


def test_an_authorized_caregiver_passes_and_an_unauthorized_one_fails_at_once(
    library: Library,
) -> None:
    call = ScriptedCall.start(library, FACTS, [REFILL])
    call.forward()
    call.choose(2)
    assert call.verify("Luis Example", "03/14/1950").passed
    assert call.verified_as == "caregiver" and call.flow.id == "kinds"
    unauthorized = dataclasses.replace(FACTS, caregiver_authorized=False)
    call = ScriptedCall.start(library, unauthorized, [REFILL])
    call.forward()
    call.choose(2)
    result = call.verify("Luis Example", "03/14/1950")
    assert result.done and not result.passed and "no caregiver is authorized" in result.message
    assert call.step.id == "sorry"


def test_voicemail_and_end_steps_suggest_the_disposition(library: Library) -> None:
    call = ScriptedCall.start(library, FACTS, [REFILL])
    call.forward()
    call.choose(3)
    view = call.view()
    assert view.finished and view.disposition == "voicemail"
    assert view.text == "A message from Sample Pharmacy: call (555) 010-0199."  # as it is said
    assert call.suggested_disposition == "voicemail"
    assert not call.forward()


def test_bundled_call_has_one_greeting_one_check_sections_in_clinical_order_and_one_close() -> None:
    library = Library.load()
    items = [
        DueItem("vaccine", "vaccine:zoster", task_id=3),
        DueItem("refill_reminder", "rx:1:2026-12-05", task_id=1, prescription_id=1),
        DueItem("vaccine", "vaccine:influenza:2026-27", task_id=4),
    ]
    plan = library.plan(items)
    flows = [s.flow_id for s in plan.segments]
    assert flows[0] == "call_opening" and flows[-1] == "call_closing"
    assert flows.index("refill_reminder") < flows.index("vaccine_zoster")
    assert len(flows) == 5 and plan.unscripted == ()
    shown: list[tuple[str, str]] = []
    call = ScriptedCall.start(library, FACTS, items)
    checks = 0
    while not call.finished:
        shown.append((call.flow.id, call.step.id))
        step = call.step
        if step.type == "verify":
            checks += 1
            assert call.verify("Rosa Example", "1950-03-14").passed
        elif step.type == "ask" and step.choices:
            call.choose(1)
        elif step.type == "ask":
            call.answer("fine")
        else:
            assert call.forward()
    assert checks == 1
    assert [f for f, s in shown].count("call_opening") >= 2  # greeting, who, verify...
    assert shown[0] == ("call_opening", "greeting")
    order = list(dict.fromkeys(f for f, _ in shown))
    assert order[0] == "call_opening" and order[-1] == "call_closing"
    assert order.index("refill_reminder") < order.index("vaccine_zoster")
    kinds = sorted(a.kind for a in call.actions())
    # the first answer everywhere: "yes" to "anything else?" asks a pharmacist to call back
    assert kinds == [
        "pharmacist_escalation",
        "refill_request",
        "vaccine_interest",
        "vaccine_interest",
    ]
    assert call.suggested_disposition == "completed"
    answered = dict(call.view().answered)
    # Two vaccines asked the same question: each answer is named by its section.
    assert answered["Shingles vaccine · interest"] == answered["Flu shot · interest"]
    assert len([k for k in answered if k.endswith("· interest")]) == 2


def test_state_round_trips_through_json_and_resumes_at_the_same_step(library: Library) -> None:
    call = verified_call(library)
    call.forward()
    call.answer("12")
    call.switch_language("es")
    saved = json.loads(json.dumps(call.saved()))
    again = ScriptedCall.restore(library, FACTS, saved)
    assert again.step.id == "since" and again.view().text == "¿Cuándo tomó la última?"
    assert again.verified and again.path_answers() == call.path_answers()
    again.back()
    assert again.view().answer == 12


# -- privacy: the engine refuses, whatever the flow says -------------------------------------
# A greeting that names the drug before anyone is verified, then hangs up.
LEAKY_GREETING = GREETING.replace("this is {pharmacy.name}.", "your {rx.drug} is due.").replace(
    "le llamamos de {pharmacy.name}.", "le toca {rx.drug}."
) + (
    'next = "bye"\n\n[steps.bye]\ntype = "end"\ntext.en = "Bye"\ntext.es = "Adiós"\n'
    'disposition = "completed"\n'
)


def _load_unlinted(tmp_path: Path, source: str) -> Library:
    """The engine on its own: these flows never went through lint."""
    root = tmp_path / "raw"
    bundled = Path(__file__).parents[2] / "scripts_library" / "flows" / "refill_reminder.toml"
    write_flow(root, "call_opening", source)
    write_flow(root, "call_closing", CLOSING)
    write_flow(root, "refill_reminder", bundled.read_text())
    return Library.load([root])


def test_engine_refuses_a_drug_name_before_verification(tmp_path: Path) -> None:
    library = _load_unlinted(tmp_path, LEAKY_GREETING)
    call = ScriptedCall.start(library, FACTS, [REFILL])
    with pytest.raises(PrivacyViolation, match="health information and identity is not verified"):
        call.view()


def test_engine_refuses_a_literal_drug_name_of_the_patient_before_verification(
    tmp_path: Path,
) -> None:
    literal = LEAKY_GREETING.replace("{rx.drug}", "Lisinopril").replace("{rx.drug}", "Lisinopril")
    library = _load_unlinted(tmp_path, literal)
    call = ScriptedCall.start(library, FACTS, [REFILL])
    with pytest.raises(PrivacyViolation, match="lisinopril"):
        call.view()


def test_engine_refuses_a_patient_name_in_a_voicemail(tmp_path: Path) -> None:
    source = (
        LEAKY_GREETING.replace('type = "say"', 'type = "voicemail"')
        .replace('next = "bye"', "")
        .replace(", your {rx.drug} is due", "")
        .replace(", le toca {rx.drug}", "")
    )
    library = _load_unlinted(tmp_path, source)
    call = ScriptedCall.start(library, FACTS, [REFILL])
    with pytest.raises(PrivacyViolation, match="voicemail may use only"):
        call.view()


def test_engine_will_not_enter_the_sections_before_identity_is_verified(tmp_path: Path) -> None:
    source = (
        LEAKY_GREETING.replace(", your {rx.drug} is due", "")
        .replace(", le toca {rx.drug}", "")
        .replace('next = "bye"', 'next = "@next"')
    )
    library = _load_unlinted(tmp_path, source)
    call = ScriptedCall.start(library, FACTS, [REFILL])
    assert call.view().text == "Hello Rosa."
    with pytest.raises(PrivacyViolation, match="identity is not verified"):
        call.forward()
    assert call.step.id == "greeting"  # refused moves leave the call where it was
