"""No raw codes on screen: every subject and disposition in the words an agent uses (issue 21)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from queues.outcomes import disposition_options
from queues.views.outcome import DISPOSITION_WORDS, disposition_words
from scripts_library.placeholders import subject_words, vaccine_words


@pytest.mark.parametrize(
    ("subject", "words"),
    [
        ("vaccine:rsv", "RSV vaccine"),
        ("vaccine:influenza:2026", "flu shot"),
        ("vaccine:zoster", "shingles vaccine"),
        ("rsv", "RSV vaccine"),
        ("rx:17:2026-12-05", "refill due Dec 05"),
        ("pdc:STATIN:2026-12-01", "adherence: cholesterol medicine"),
        ("newstart:Metformin:2026-11-20", "new medicine follow-up (metformin)"),
        ("presync:2026-12-10", "med-sync check before pickup Dec 10"),
        ("tobacco:2026", "smoking cessation"),
        ("med_sync", "med-sync enrollment"),
        ("dsme", "diabetes education"),
        ("callback_requested", "callback requested"),
    ],
)
def test_every_subject_is_said_in_words(subject: str, words: str) -> None:
    assert subject_words(subject) == words
    assert ":" not in subject_words(subject) or subject.startswith("pdc")
    assert "_" not in subject_words(subject)


def test_a_vaccine_is_named_not_coded() -> None:
    assert vaccine_words("pneumococcal") == "pneumonia vaccine"
    assert vaccine_words("rsv", "es").startswith("vacuna")


def test_the_disposition_words_are_the_reference_tables_labels(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s:
        labels = {d.code: d.label for d in disposition_options(s)}
    assert labels == DISPOSITION_WORDS
    assert disposition_words("callback_requested") == "Reached – asked for a callback"
    assert disposition_words("some_new_code") == "Some new code"
