"""Time as the domain sees it: the wall clock, or a demo database's practice clock."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from queues.store.models import Attempt, DemoSetting
from queues.timeutil import as_utc, utcnow

PRACTICE_CLOCK_KEY = "practice_clock_start"


class Clock(Protocol):
    def now(self) -> datetime: ...

    @property
    def is_practice(self) -> bool: ...


class SystemClock:
    is_practice = False

    def now(self) -> datetime:
        return utcnow()


@dataclass
class PracticeClock:
    """Starts at `start` when built and runs at real speed, so a demo works at any hour."""

    start: datetime
    _t0: float = 0.0
    is_practice = True

    def __post_init__(self) -> None:
        self.start = as_utc(self.start)
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self._t0)


@dataclass(frozen=True)
class FixedClock:
    """A clock that never moves: tests and `--now` on one-shot commands."""

    at: datetime
    is_practice: bool = False

    def now(self) -> datetime:
        return as_utc(self.at)


def clock_for(session: Session) -> Clock:
    """The practice clock when the database was made by `outreach demo`, else the wall clock."""
    value = session.scalar(select(DemoSetting.value).where(DemoSetting.key == PRACTICE_CLOCK_KEY))
    if not value:
        return SystemClock()
    start = as_utc(datetime.fromisoformat(value))
    # Reopening the demo resumes after the last saved call, so practice time never runs backwards
    # past work already recorded (callbacks, retries and "today" figures stay consistent).
    last = session.scalar(select(func.max(Attempt.recorded_at)))
    if last is not None and as_utc(last) > start:
        start = as_utc(last)
    return PracticeClock(start)
