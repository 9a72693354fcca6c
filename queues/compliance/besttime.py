"""A patient's "best time to call", as staff type it: morning, afternoon, evening, "after 17:00",
"before 11:00", "10:00-14:00", "anytime". Read in the patient's home time zone."""

from __future__ import annotations

import re
from datetime import time

NAMED: dict[str, tuple[time, time | None]] = {
    "morning": (time(8), time(12)),
    "mornings": (time(8), time(12)),
    "afternoon": (time(12), time(17)),
    "afternoons": (time(12), time(17)),
    "evening": (time(17), None),
    "evenings": (time(17), None),
}
ANYTIME = {"", "any", "anytime", "any time", "none", "no preference"}
_CLOCK = r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?"


class BestTimeUnclear(ValueError):
    pass


def _clock(hour: str, minute: str | None, half: str | None) -> time:
    h, m = int(hour), int(minute or 0)
    if half:
        if not 1 <= h <= 12:
            raise BestTimeUnclear(f"{hour}{half} is not a time")
        h = h % 12 + (12 if half == "pm" else 0)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise BestTimeUnclear(f"{hour}:{minute} is not a time")
    return time(h, m)


def parse_best_time(text: str | None) -> tuple[time, time | None] | None:
    """(start, end) with end None for "until the window closes"; None for no preference.

    Raises BestTimeUnclear for text it cannot read, so the caller can say so instead of guessing.
    """
    said = (text or "").strip().lower()
    if said in ANYTIME:
        return None
    if said in NAMED:
        return NAMED[said]
    if m := re.fullmatch(rf"after\s+{_CLOCK}", said):
        return _clock(*m.groups()), None
    if m := re.fullmatch(rf"before\s+{_CLOCK}", said):
        return time(0), _clock(*m.groups())
    if m := re.fullmatch(rf"(?:between\s+)?{_CLOCK}\s*(?:-|–|to|and)\s*{_CLOCK}", said):
        g = m.groups()
        start, end = _clock(*g[:3]), _clock(*g[3:])
        if end <= start:
            raise BestTimeUnclear(f"{text!r} ends before it starts")
        return start, end
    raise BestTimeUnclear(f"{text!r} is not a best time this console understands")
