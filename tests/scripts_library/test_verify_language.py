"""The identity check answers in the call's language (issue 21): a Spanish flow's agent reads
'identidad verificada (paciente)' and 'no coincide con el registro', as its birth-date error is in
Spanish; an English flow's words stay as they were."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from scripts_library.engine import AnswerError, ScriptedCall
from scripts_library.facts import PatientFacts
from scripts_library.library import Library
from scripts_library.placeholders import verify_words
from tests.scripts_library.helpers import SECTION, write_library
from tests.scripts_library.test_engine import FACTS, REFILL

SPANISH = dataclasses.replace(FACTS, language="es")


@pytest.fixture
def library(tmp_path: Path) -> Library:
    return write_library(tmp_path, kinds=SECTION)


def at_verify(library: Library, facts: PatientFacts, who: int) -> ScriptedCall:
    call = ScriptedCall.start(library, facts, [REFILL])
    assert call.state.language == facts.language
    call.forward()
    call.choose(who)  # 1 the patient, 2 a caregiver
    return call


def test_a_spanish_patients_check_is_answered_in_spanish(library: Library) -> None:
    call = at_verify(library, SPANISH, 1)
    first = call.verify("Rosa Example", "15/03/1950")  # a day off
    assert not first.passed and not first.done
    assert first.message == (
        "el nombre o la fecha de nacimiento no coincide con el registro; queda 1 intento más"
    )
    second = call.verify("Rosa Example", "16/03/1950")
    assert second.done and second.message.startswith("identidad no verificada: el nombre")
    call = at_verify(library, SPANISH, 1)
    passed = call.verify("Rosa Example", "14/03/1950")
    assert passed.passed and passed.message == "identidad verificada (paciente)"


def test_a_spanish_caregiver_check_is_answered_in_spanish(library: Library) -> None:
    call = at_verify(library, SPANISH, 2)
    assert call.verify("Luis Example", "14/03/1950").message == "identidad verificada (cuidador)"
    unauthorized = dataclasses.replace(SPANISH, caregiver_authorized=False)
    result = at_verify(library, unauthorized, 2).verify("Luis Example", "14/03/1950")
    assert result.done and not result.passed
    assert "ningún cuidador está autorizado" in result.message, result.message


def test_english_words_stay_and_every_language_has_every_message() -> None:
    assert set(verify_words("en")) == set(verify_words("es"))
    assert verify_words("en")["verified"] == "identity verified ({who})"
    assert verify_words("xx") == verify_words("en")  # a language without words: English


def test_an_identity_check_on_another_step_is_refused_in_the_calls_language(
    library: Library,
) -> None:
    call = ScriptedCall.start(library, SPANISH, [REFILL])
    with pytest.raises(AnswerError, match="no es una verificación de identidad"):
        call.verify("Rosa Example", "14/03/1950")
