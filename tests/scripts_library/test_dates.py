"""Dates in the call's language: the order the prompt shows is the one the check accepts, its
error speaks the call's language, and a date is shown the way the patient writes it (issue 21)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from scripts_library.engine import AnswerError, parse_date
from scripts_library.placeholders import DATE_ORDER, date_hint, numeric_date, shown_date

BORN = date(1935, 7, 6)


def pattern_of(order: str) -> str:
    """'MM/DD/YYYY' or 'DD/MM/AAAA' as a regular expression: each letter one digit."""
    return re.sub(r"[A-Z]", r"\\d", order)


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_date_typed_as_the_prompt_shows_is_accepted(language: str) -> None:
    order = DATE_ORDER[language]
    assert order in date_hint(language)  # the prompt names the order the check uses
    typed = numeric_date(BORN, language)
    assert re.fullmatch(pattern_of(order), typed), (order, typed)
    assert parse_date(typed, language) == BORN
    iso = re.search(r"\d{4}-\d{2}-\d{2}", date_hint(language))
    assert iso is not None and parse_date(iso.group(), language)  # the ISO example works too


def test_day_and_month_go_the_call_languages_way() -> None:
    assert numeric_date(BORN, "en") == "07/06/1935"
    assert numeric_date(BORN, "es") == "06/07/1935"
    assert parse_date("07/06/1935", "en") == BORN
    assert parse_date("06/07/1935", "es") == BORN


def test_the_error_speaks_the_calls_language_and_names_the_prompts_order() -> None:
    with pytest.raises(AnswerError) as spanish:
        parse_date("31/31/1935", "es")
    assert "no es una fecha" in str(spanish.value)
    assert DATE_ORDER["es"] in str(spanish.value)  # DD/MM/AAAA, as the prompt says it
    with pytest.raises(AnswerError) as english:
        parse_date("ayer", "en")
    assert "is not a date" in str(english.value) and DATE_ORDER["en"] in str(english.value)


def test_a_birth_date_is_shown_the_patients_way() -> None:
    assert shown_date(BORN, "en") == "Jul 06, 1935 (07/06/1935)"
    assert shown_date(BORN, "es").startswith("06/07/1935")
