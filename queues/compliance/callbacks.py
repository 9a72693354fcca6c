"""When a callback may be set: inside the patient's calling windows (federal hours, their state's
rules, the pharmacy's own limits and opening hours, no-call days such as Sundays and holidays), and
the next open times the wrap-up offers, in the patient's own time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from queues.compliance.check import legal_windows, whereabouts
from queues.compliance.patient import _PHONES, _head, hours_of, limits_of, undialed_facts
from queues.compliance.windows import Window, closed_windows, next_open
from queues.errors import ConfigError, InvalidOutcome
from queues.settings import QueueSettings
from queues.timeutil import as_utc

# The picker's steps: half hours, the day's suggestion from 10:00 and the afternoon's from 14:00
# (patient time), looked for over the next two weeks.
STEP = timedelta(minutes=30)
MORNING, AFTERNOON = time(10), time(14)
HORIZON = timedelta(days=14)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class CallingWindows:
    """The windows that must all be open for a call to this patient, and their home zone."""

    windows: tuple[Window, ...]
    zone: str

    def local(self, at: datetime) -> datetime:
        return as_utc(at).astimezone(ZoneInfo(self.zone))

    def is_open(self, at: datetime) -> bool:
        return not closed_windows(self.windows, as_utc(at))

    def why_closed(self, at: datetime) -> str | None:
        """The first closed window's sentence at `at` (None: every window is open)."""
        closed = closed_windows(self.windows, as_utc(at))
        return closed[0].describe(as_utc(at)) if closed else None

    def next_open(self, at: datetime) -> datetime | None:
        return next_open(self.windows, as_utc(at))

    def slots(self, now: datetime, count: int = 5) -> tuple[datetime, ...]:
        """The next open times worth offering, in the patient's time: the first open half hour at
        least 30 minutes from now, that day's afternoon from 14:00, then each next open day's
        from 10:00 (or its first open half hour)."""
        tz = ZoneInfo(self.zone)
        start = self.local(now) + STEP
        start = start.replace(minute=0 if start.minute < 30 else 30, second=0, microsecond=0)
        start += STEP  # on a half hour, 30 to 60 minutes ahead
        found: list[datetime] = []
        day = start.date()
        while len(found) < count and day <= (start + HORIZON).date():
            opens = [
                at
                for n in range(48)
                if (at := datetime.combine(day, time(0), tzinfo=tz) + n * STEP) >= start
                and self.is_open(at)
            ]
            day += timedelta(days=1)
            if not opens:
                continue
            if found:
                found.append(next((at for at in opens if at.time() >= MORNING), opens[0]))
                continue
            found.append(opens[0])
            afternoon = [at for at in opens if at.time() >= AFTERNOON and at - opens[0] >= HOUR]
            found.extend(afternoon[:1])
        return tuple(found[:count])


def calling_windows(
    session: Session, patient_id: int, settings: QueueSettings | None = None
) -> CallingWindows:
    """The patient's calling windows from their address, numbers, state and pharmacy. Raises
    ConfigError when the pharmacy's own limits cannot be read (no time is open then)."""
    settings = settings or QueueSettings()
    head = _head(session, patient_id)
    limits = limits_of(head, settings)
    if isinstance(limits, ConfigError):
        raise limits
    phones = session.connection().execute(_PHONES, {"patient_id": patient_id}).all()
    facts = undialed_facts(head, phones)
    numbers = (p.number for p in facts.phones if not p.wrong_number and not p.do_not_call)
    zones, states, home_state = whereabouts(facts.zip_code, facts.state, numbers)
    windows = legal_windows(zones, states, limits, hours_of(head), home_state)
    return CallingWindows(tuple(windows), zones[0] if zones else head.timezone)


def check_callback_time(
    session: Session,
    patient_id: int,
    callback_at: datetime,
    settings: QueueSettings | None = None,
) -> None:
    """Raise InvalidOutcome('callback_at', …) when the callback falls outside the patient's calling
    window or on a day they may not be called, naming the next open time."""
    try:
        windows = calling_windows(session, patient_id, settings)
    except ConfigError as bad:
        raise InvalidOutcome("callback_at", f"no callback can be set: {bad}") from None
    why = windows.why_closed(callback_at)
    if why is None:
        return
    when = f"{windows.local(callback_at):%a %b %d %H:%M %Z}"
    later = windows.next_open(callback_at)
    after = (
        f" The next open time is {windows.local(later):%a %b %d %H:%M %Z}."
        if later is not None
        else " No open time in the next two weeks."
    )
    raise InvalidOutcome(
        "callback_at", f"{when} is outside the patient's calling window: {why}{after}"
    )
