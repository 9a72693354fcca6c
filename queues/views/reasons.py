"""Why a patient may not be called now, as short codes and as a supervisor reads them."""

from __future__ import annotations

WINDOW_CODES = ("federal_window", "calling_window", "pharmacy_hours", "best_time", "no_sundays")
WINDOW_PREFIXES = ("state_window_", "state_sunday_", "state_holiday_", "holiday")


def is_window_code(code: str) -> bool:
    return code in WINDOW_CODES or code.startswith(WINDOW_PREFIXES)


WAITING = "waiting"  # not blocked by a rule: a retry or callback time not reached yet


def reason_words(code: str) -> str:
    """A blocked reason as a supervisor reads it (the calling-window family is one reason)."""
    if is_window_code(code):
        return "calling window"
    return {
        "daily_cap": "daily cap",
        "weekly_cap": "weekly cap",
        "subject_cap": "subject cap",
        "dnc_patient": "do-not-call",
        "dnc_number": "do-not-call number",
        "consent_refused": "no consent",
        "no_phone": "no number",
        "no_usable_number": "no number",
        "wrong_number": "wrong number",
        WAITING: "retry/callback time",
    }.get(code, code.replace("_", " "))
