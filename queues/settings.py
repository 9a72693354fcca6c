"""Settings the domain needs, as frozen dataclasses. `console.config` reads them from config.toml."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import time

from queues.errors import ConfigError

_HHMM = re.compile(r"([01]\d|2[0-4]):([0-5]\d)")


def parse_hhmm(value: str, key: str, where: str = "[queue]") -> time | None:
    """ "08:00" as a time; "24:00" is None (midnight at the end of the day)."""
    m = _HHMM.fullmatch(value)
    if m is None or (m.group(1) == "24" and m.group(2) != "00"):
        raise ConfigError(where, key, f'expected a time of day like "08:00", got {value!r}')
    if m.group(1) == "24":
        return None
    return time(int(m.group(1)), int(m.group(2)))


@dataclass(frozen=True)
class QueueSettings:
    # How long a claim holds a patient without a heartbeat; the console beats every third of it.
    lease_seconds: int = 300
    # Refill reminders for chronic prescriptions that run out within this many days.
    refill_window_days: int = 7
    # Attempts per patient before the work closes with a final disposition.
    max_attempts: int = 3
    # Pre-sync check calls this many days before a med-sync patient's pickup day.
    pre_sync_days: int = 3
    # A "mine" callback waits this long past its time for its owner, then goes to anyone.
    callback_grace_minutes: int = 30
    # Calling window in the patient's local time; it can only narrow the federal 08:00-21:00
    # (47 CFR 64.1200(c)(1)); state rules narrow it further where they apply.
    calling_window_start: str = "08:00"
    calling_window_end: str = "21:00"
    # Calls per patient across all programs, rolling 24 h and 7 days (HIPAA health-care
    # exemption: 1 a day, 3 a week; 47 CFR 64.1200(a)(9)(iv), FCC 20-186).
    daily_attempt_cap: int = 1
    weekly_attempt_cap: int = 3
    # Calls on the same subject per rolling 24 h where a state caps them (FL, OK, MD: 3).
    same_subject_cap_24h: int = 3
    # Never call on Sundays / legal holidays (some states forbid it; this applies it everywhere).
    no_calls_on_sundays: bool = False
    no_calls_on_holidays: bool = False
    # Retries: no answer again after N hours, at most M unanswered attempts; busy after K minutes.
    no_answer_retry_hours: int = 4
    no_answer_max_attempts: int = 3
    busy_retry_minutes: int = 30

    def __post_init__(self) -> None:
        start = parse_hhmm(self.calling_window_start, "queue.calling_window_start")
        end = parse_hhmm(self.calling_window_end, "queue.calling_window_end")
        if start is None or (end is not None and end <= start):
            raise ConfigError(
                "[queue]", "queue.calling_window_end", "the calling window must end after it starts"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            if type(value) is int and value < 0:
                raise ConfigError("[queue]", f"queue.{f.name}", f"expected 0 or more, got {value}")
