"""The checks of a CSV export's values, shared by the line path (queues.imports.csv_rows) and the
column path (queues.imports.csv_columns): what a flag, a phone kind, a state, an identifier, a
date, a number, a phone number, a patient's ZIP code, state, language and birth date, and a
fill's days supply may be, each refusal a Bad(field, why) that the file reader turns into
`file:line: field: why`. The checks a value repeats down a column are memoized per file (memo).
Kept apart from the readers so that both paths read a value by the very same check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TypeVar

from queues.adherence.supply import MAX_DAYS_SUPPLY
from queues.compliance.states import US_STATES
from queues.imports.fhir import e164

TRUE = {"1", "true", "yes", "y", "t"}
FALSE = {"0", "false", "no", "n", "f"}
_FLAGS = {**dict.fromkeys(TRUE, True), **dict.fromkeys(FALSE, False)}
PHONE_KINDS = ("mobile", "home", "work")
# Where a patient may live: the states and DC (queues.compliance), the territories and the
# military post offices (USPS codes).
STATES = US_STATES | {"AS", "GU", "MP", "VI", "AA", "AE", "AP"}
# Each kind's identifier: a second row with the same one is a mistake in the export (which of the
# two is right?), named at both lines. Phones are keyed by the number: a repeat is the same phone.
IDENTIFIERS: dict[str, tuple[str, ...]] = {
    "patients": ("mrn",),
    "prescriptions": ("mrn", "rx_id"),
    "fills": ("mrn", "rx_id", "fill_id"),
}
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?")
_LANGUAGE = re.compile(r"([A-Za-z]{2,3})([-_][A-Za-z0-9]{1,8})*")
# A US number already in E.164 whose area code starts 2-9: phonenumbers gives it back as it is
# (its parse is ~30 µs a number; test_csv checks the two agree), anything else goes through e164.
_NANP_E164 = re.compile(r"\+1[2-9][0-9]{9}")
EARLIEST_DAY = date(1900, 1, 1)
EARLIEST_BIRTH = date(1880, 1, 1)
# A column's checked values kept per file, at most this many (an export's fill dates, days
# supplies, states and drugs are a few thousand; unique values just miss).
MEMO_LIMIT = 100_000

T = TypeVar("T")


class Bad(Exception):
    def __init__(self, field: str, why: str) -> None:
        self.field, self.why = field, why


# -- values ---------------------------------------------------------------------------------------
def memo(check: Callable[[str], T]) -> Callable[[str], T]:
    """`check` of a column's value, asked once per distinct value (its answer or its Bad kept)."""
    answers: dict[str, T] = {}
    refusals: dict[str, Bad] = {}

    def checked(value: str) -> T:
        try:
            return answers[value]
        except KeyError:
            pass
        bad = refusals.get(value)
        if bad is not None:
            raise Bad(bad.field, bad.why)
        try:
            answer = check(value)
        except Bad as refused:
            if len(refusals) < MEMO_LIMIT:
                refusals[value] = refused
            raise
        if len(answers) < MEMO_LIMIT:
            answers[value] = answer
        return answer

    return checked


def text(value: str, name: str, limit: int, required: bool = True) -> str:
    if required and not value:
        raise Bad(name, "empty")
    if len(value) > limit:
        raise Bad(name, f"longer than {limit} characters")
    return value


def identifier(value: str, name: str) -> str:
    """An MRN, rx_id or fill_id: `|` joins them into one key (mrn|rx_id), so it may not be in one."""
    if not value:
        raise Bad(name, "empty")
    if len(value) > 64:
        raise Bad(name, "longer than 64 characters")
    if "|" in value:
        raise Bad(name, "may not contain |")
    return value


def iso_dates(name: str, earliest: date = EARLIEST_DAY) -> Callable[[str], date]:
    """A (non-empty) YYYY-MM-DD date from `earliest` to a year from today (a fill dated
    9999-12-30 would run out past the calendar's end); today is read once per file."""
    latest = date.today() + timedelta(days=366)

    def day(value: str) -> date:
        try:
            if not _ISO_DAY.fullmatch(value):
                raise ValueError(value)
            found = date.fromisoformat(value)
        except ValueError:
            raise Bad(name, "not a date like 2026-12-02") from None
        if not earliest <= found <= latest:
            raise Bad(name, f"not a plausible date ({earliest} to {latest})")
        return found

    return memo(day)


def flag_value(value: str, name: str, default: bool | None = False) -> Any:
    if not value:
        return default
    found = _FLAGS.get(value.lower())
    if found is None:
        raise Bad(name, "not true/false (yes/no, 1/0)")
    return found


def numbers(
    name: str, low: float = 0, high: float = 1e9, whole: bool = False
) -> Callable[[str], float]:
    """A (non-empty) number from `low` to `high`, as float() reads it."""

    def number(value: str) -> float:
        if not _NUMBER.fullmatch(value):  # not float()'s "1_000", "nan", "inf", other digits
            raise Bad(name, "not a number")
        found = float(value)
        if not low <= found <= high:
            raise Bad(name, f"must be from {low:g} to {high:g}")
        if whole and found != int(found):
            raise Bad(name, "must be a whole number")
        return found

    return memo(number)


def phone_number(value: str) -> str | None:
    return value if _NANP_E164.fullmatch(value) else e164(value)


def patient_values() -> tuple[
    Callable[[str], str], Callable[[str], str], Callable[[str], str], Callable[[str], date]
]:
    """A patients file's checks of a ZIP code, a state, a language and a birth date (stripped
    values; each distinct value checked once)."""
    today = date.today()

    def zip_code(value: str) -> str:
        found = text(value, "zip_code", 10)[:5]
        if len(found) != 5 or not (found.isascii() and found.isdigit()):
            raise Bad("zip_code", "not a 5-digit ZIP code")
        return found

    def state(value: str) -> str:
        found = text(value, "state", 2).upper()
        if found not in STATES:
            raise Bad("state", "not a US state's 2-letter code")
        return found

    def language_code(value: str) -> str:
        tag = _LANGUAGE.fullmatch(text(value, "language", 16, required=False) or "en")
        if tag is None:
            raise Bad("language", "not a language code like en, es or es-MX")
        return tag.group(1).lower()

    dates = iso_dates("birth_date", EARLIEST_BIRTH)

    def birth_date(value: str) -> date:
        if not value:
            raise Bad("birth_date", "empty")
        found = dates(value)
        if found > today:
            raise Bad("birth_date", "not a plausible birth date")
        return found

    return memo(zip_code), memo(state), memo(language_code), birth_date


def days_supplies(name: str = "days_supply") -> Callable[[str], int]:
    """A fill's days supply: a whole number of days from 1 to MAX_DAYS_SUPPLY."""
    supply_days = numbers(name, low=1, high=1e9, whole=True)

    def supply(value: str) -> int:
        days = supply_days(value)
        if days > MAX_DAYS_SUPPLY:
            why = f"{int(days)} days: at most {MAX_DAYS_SUPPLY} days per fill"
            raise Bad("days_supply", why)
        return int(days)

    return memo(supply)
