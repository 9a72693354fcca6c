"""Who may be called besides the clock: do-not-call, wrong numbers, consent, best time to call,
frequency caps (daily, weekly, a state's same-subject cap) and a pharmacy's own tighter limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta

import pytest

from queues.compliance import (
    PatientFacts,
    PharmacyHours,
    PhoneFacts,
    evaluate,
    pharmacy_limits,
    site_limits,
)
from queues.errors import ConfigError
from queues.settings import QueueSettings

NOON = datetime.fromisoformat("2026-12-02T12:00-06:00")  # a Wednesday in Dallas
SITE = site_limits(QueueSettings())
TEXAN = PatientFacts(zip_code="75201", state="TX", phones=(PhoneFacts("+12145550100"),))
FLORIDIAN = PatientFacts(zip_code="33101", state="FL", phones=(PhoneFacts("+13055550100"),))


def hours_ago(*hours: float) -> tuple[datetime, ...]:
    return tuple(NOON - timedelta(hours=h) for h in hours)


FLAG_CASES = [
    ("do-not-call patient", replace(TEXAN, do_not_call=True), "dnc_patient"),
    ("deceased", replace(TEXAN, deceased=True), "deceased"),
    ("consent refused", replace(TEXAN, consent_to_call=False), "consent_refused"),
    ("no phone", replace(TEXAN, phones=()), "no_phone"),
    ("only a wrong number", replace(TEXAN, phones=(PhoneFacts("+12145550100", wrong_number=True),)),
     "no_usable_number"),
    ("only a do-not-call number",
     replace(TEXAN, phones=(PhoneFacts("+12145550100", do_not_call=True),)), "no_usable_number"),
    ("unknown ZIP and toll-free number",
     PatientFacts(zip_code="00000", state=None, phones=(PhoneFacts("+18005550100"),)), "zone_unknown"),
]  # fmt: skip


@pytest.mark.parametrize(("facts", "code"), [pytest.param(*c[1:], id=c[0]) for c in FLAG_CASES])
def test_a_flag_blocks_the_call_until_a_person_lifts_it(facts: PatientFacts, code: str) -> None:
    verdict = evaluate(facts, SITE, NOON)
    assert not verdict.callable
    assert code in verdict.codes
    assert verdict.next_open_at is None and verdict.numbers == ()


def test_consent_given_or_unknown_does_not_block() -> None:
    assert evaluate(replace(TEXAN, consent_to_call=True), SITE, NOON).callable
    assert evaluate(replace(TEXAN, consent_to_call=None), SITE, NOON).callable


def test_a_wrong_number_is_skipped_and_the_other_number_is_dialed() -> None:
    facts = replace(
        TEXAN,
        phones=(PhoneFacts("+12145550100", wrong_number=True), PhoneFacts("+12145550199")),
    )
    verdict = evaluate(facts, SITE, NOON)
    assert verdict.callable and verdict.numbers == ("+12145550199",)


def test_a_wrong_numbers_zone_does_not_count() -> None:
    # The Los Angeles number does not reach the patient, so 07:30 there does not matter.
    facts = replace(
        TEXAN, phones=(PhoneFacts("+13105550100", wrong_number=True), PhoneFacts("+12145550100"))
    )
    verdict = evaluate(facts, SITE, datetime.fromisoformat("2026-12-02T09:30-06:00"))
    assert verdict.callable and verdict.zones == ("America/Chicago",)


DIAL_CASES = [
    ("a do-not-call number", PhoneFacts("+12145550100", do_not_call=True), "dnc_number"),
    ("a wrong number", PhoneFacts("+12145550100", wrong_number=True), "wrong_number"),
]


@pytest.mark.parametrize(("phone", "code"), [pytest.param(*c[1:], id=c[0]) for c in DIAL_CASES])
def test_dialing_a_flagged_number_is_refused(phone: PhoneFacts, code: str) -> None:
    facts = replace(TEXAN, phones=(phone, PhoneFacts("+12145550199")))
    assert evaluate(facts, SITE, NOON).callable  # the patient is, through the other number
    verdict = evaluate(facts, SITE, NOON, number="+12145550100")
    assert not verdict.callable and verdict.codes == (code,)


def test_dialing_a_number_not_on_file_is_refused() -> None:
    verdict = evaluate(TEXAN, SITE, NOON, number="+12145559999")
    assert verdict.codes == ("unknown_number",)


CAP_CASES = [
    ("one call 3 h ago: daily cap", TEXAN, hours_ago(3), (), "daily_cap", hours_ago(3)[0] + timedelta(hours=24)),
    ("one call 25 h ago: free", TEXAN, hours_ago(25), (), None, None),
    ("three calls this week: weekly cap", TEXAN, hours_ago(30, 60, 120), (), "weekly_cap",
     hours_ago(120)[0] + timedelta(days=7)),
    ("three calls, the oldest 8 days ago", TEXAN, hours_ago(30, 60, 192), (), None, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("facts", "attempts", "same", "code", "opens"),
    [pytest.param(*c[1:], id=c[0]) for c in CAP_CASES],
)
def test_frequency_caps_across_programs(
    facts: PatientFacts,
    attempts: tuple[datetime, ...],
    same: tuple[datetime, ...],
    code: str | None,
    opens: datetime | None,
) -> None:
    verdict = evaluate(replace(facts, attempts=attempts, same_subject_attempts=same), SITE, NOON)
    if code is None:
        assert verdict.callable
    else:
        assert verdict.codes[0] == code and verdict.next_open_at == opens


def test_florida_caps_calls_on_the_same_subject_at_three_a_day() -> None:
    loose = replace(SITE, daily_cap=5, weekly_cap=10)
    three = hours_ago(1, 2, 3)
    fl = evaluate(replace(FLORIDIAN, attempts=three, same_subject_attempts=three), loose, NOON)
    assert fl.codes == ("subject_cap_FL",)
    assert fl.next_open_at == hours_ago(3)[0] + timedelta(hours=24)
    # Texas has no such cap; other subjects in Florida do not count either.
    tx = evaluate(replace(TEXAN, attempts=three, same_subject_attempts=three), loose, NOON)
    assert tx.callable
    other = evaluate(replace(FLORIDIAN, attempts=three, same_subject_attempts=()), loose, NOON)
    assert other.callable


def test_a_cap_and_a_closed_window_open_at_the_later_of_the_two() -> None:
    # Called yesterday at 20:30 Chicago: the cap lifts at 20:30 today, past 20:00 pharmacy close.
    pharmacy = PharmacyHours("TX1", "America/Chicago", time(8), time(20))
    called = (datetime.fromisoformat("2026-12-01T20:30-06:00"),)
    verdict = evaluate(replace(TEXAN, attempts=called), SITE, NOON, pharmacy=pharmacy)
    assert verdict.codes == ("daily_cap",)
    assert verdict.next_open_at == datetime.fromisoformat("2026-12-03T08:00-06:00")


BEST_TIME_CASES = [
    ("afternoon, at noon", "afternoon", "2026-12-02T12:00-06:00", True, None),
    ("afternoon, in the morning", "afternoon", "2026-12-02T10:00-06:00", False, "2026-12-02T12:00:00-06:00"),
    ("after 17:00", "after 17:00", "2026-12-02T16:59-06:00", False, "2026-12-02T17:00:00-06:00"),
    ("after 5pm", "after 5pm", "2026-12-02T17:00-06:00", True, None),
    ("before 11:00, too late", "before 11:00", "2026-12-02T11:00-06:00", False, "2026-12-03T08:00:00-06:00"),
    ("10:00-14:00", "10:00-14:00", "2026-12-02T13:59-06:00", True, None),
    ("evening never past the federal end", "evening", "2026-12-02T21:00-06:00", False, "2026-12-03T17:00:00-06:00"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("best", "moment", "ok", "opens"), [pytest.param(*c[1:], id=c[0]) for c in BEST_TIME_CASES]
)
def test_best_time_to_call(best: str, moment: str, ok: bool, opens: str | None) -> None:
    facts = replace(TEXAN, phones=(PhoneFacts("+12145550100", best_time=best),))
    verdict = evaluate(facts, SITE, datetime.fromisoformat(moment))
    assert verdict.callable is ok
    if not ok:
        assert verdict.as_json()["next_open_at"] == opens
        assert verdict.codes in (("best_time",), ("federal_window",))


def test_a_number_without_a_best_time_can_be_called_when_the_other_waits() -> None:
    facts = replace(
        TEXAN, phones=(PhoneFacts("+12145550100", best_time="evening"), PhoneFacts("+12145550199"))
    )
    verdict = evaluate(facts, SITE, NOON)
    assert verdict.callable and verdict.numbers == ("+12145550199",)


def test_an_unclear_best_time_is_ignored_and_said() -> None:
    facts = replace(TEXAN, phones=(PhoneFacts("+12145550100", best_time="whenever, really"),))
    verdict = evaluate(facts, SITE, NOON)
    assert verdict.callable
    assert "whenever, really" in verdict.notes[0]


def test_pharmacy_hours_close_the_window() -> None:
    pharmacy = PharmacyHours("TX1", "America/Chicago", time(9), time(18))
    verdict = evaluate(
        TEXAN, SITE, datetime.fromisoformat("2026-12-02T18:00-06:00"), pharmacy=pharmacy
    )
    assert verdict.codes == ("pharmacy_hours",)
    assert verdict.as_json()["next_open_at"] == "2026-12-03T09:00:00-06:00"


def test_a_pharmacy_can_tighten_but_never_loosen() -> None:
    tight = pharmacy_limits(
        SITE,
        {"calling_window_start": "10:00", "daily_attempt_cap": 0, "no_calls_on_sundays": True},
        "pharmacy TX1",
    )
    assert tight.window_start == time(10) and tight.daily_cap == 0 and tight.no_sundays
    assert (
        evaluate(TEXAN, tight, datetime.fromisoformat("2026-12-02T09:30-06:00")).codes[0]
        == "daily_cap"
    )
    loose = pharmacy_limits(
        SITE,
        {"calling_window_start": "06:00", "calling_window_end": "23:00", "weekly_attempt_cap": 9},
        "pharmacy TX1",
    )
    assert (loose.window_start, loose.window_end, loose.weekly_cap) == (time(8), time(21), 3)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"call_after": "09:00"}, "call_after"),
        ({"daily_attempt_cap": "1"}, "daily_attempt_cap"),
        ({"calling_window_end": "9pm"}, "calling_window_end"),
    ],
)
def test_bad_pharmacy_limits_name_the_pharmacy_and_key(
    overrides: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError) as err:
        pharmacy_limits(SITE, overrides, "pharmacy TX1 calling_limits")
    assert "pharmacy TX1" in str(err.value) and key in str(err.value)


def test_a_bad_time_in_the_settings_names_the_key() -> None:
    with pytest.raises(ConfigError, match="calling_window_start"):
        QueueSettings(calling_window_start="8am")
    with pytest.raises(ConfigError, match="calling_window_end"):
        QueueSettings(calling_window_start="10:00", calling_window_end="09:00")
