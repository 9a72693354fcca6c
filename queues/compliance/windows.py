"""Daily windows in local time and the search for the next instant when all of them are open.

A window is open on its allowed days between `start` and `end` in its zone (an `end` of None is
midnight). The intersection of windows opens at the start of one of them, so the next open instant
is the earliest window start (or now) at which every window is open: a handful of candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

SEARCH_DAYS = 15


@lru_cache(maxsize=4096)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=512)
def _calendar(subdivision: str, year: int) -> dict[date, str]:
    import holidays as holiday_calendars  # ~9 MB, and only a holiday-bound rule asks

    cal = holiday_calendars.country_holidays(
        "US", subdiv=subdivision or None, years=year, categories=("public",)
    )
    return dict(cal.items())


def holiday_name(subdivision: str, day: date) -> str | None:
    """The legal holiday on `day` in a state ("" for federal only), from the `holidays` package."""
    return _calendar(subdivision, day.year).get(day)


@dataclass(frozen=True)
class Window:
    code: str
    zone: str
    start: time
    end: time | None  # None: until midnight
    # Why it is closed, one sentence; {local} becomes the local time in `zone`.
    sentence: str
    closed_on: Callable[[date], bool] | None = None
    # For a holiday window: whose calendar ("" federal), so the sentence can name the holiday.
    holiday_state: str | None = None

    def local(self, at: datetime) -> datetime:
        return at.astimezone(zone(self.zone))

    def is_open(self, at: datetime) -> bool:
        here = self.local(at)
        if self.closed_on is not None and self.closed_on(here.date()):
            return False
        moment = here.time().replace(tzinfo=None)
        return self.start <= moment and (self.end is None or moment < self.end)

    def starts(self, after: datetime, days: int) -> Iterable[datetime]:
        """Each day's opening instant (UTC) from the day before `after` on."""
        first = self.local(after).date() - timedelta(days=1)
        tz = zone(self.zone)
        for n in range(days + 1):
            day = first + timedelta(days=n)
            if self.closed_on is not None and self.closed_on(day):
                continue
            yield datetime.combine(day, self.start, tzinfo=tz).astimezone(UTC)

    def closes_after(self, at: datetime) -> datetime:
        """When this window, open at `at`, next closes (UTC): its end today, or midnight when it
        runs to the end of the day (a closed day such as a Sunday starts then)."""
        here = self.local(at)
        tz = zone(self.zone)
        if self.end is None:
            close = datetime.combine(here.date() + timedelta(days=1), time(0), tzinfo=tz)
        else:
            close = datetime.combine(here.date(), self.end, tzinfo=tz)
        return close.astimezone(UTC)

    def describe(self, at: datetime) -> str:
        here = self.local(at)
        holiday = ""
        if self.holiday_state is not None:
            holiday = holiday_name(self.holiday_state, here.date()) or ""
        return self.sentence.format(local=here.strftime("%a %H:%M %Z"), holiday=holiday)


def closed_windows(windows: Sequence[Window], at: datetime) -> list[Window]:
    return [w for w in windows if not w.is_open(at)]


def next_open(windows: Sequence[Window], now: datetime, days: int = SEARCH_DAYS) -> datetime | None:
    """The first instant at or after `now` when every window is open; None within `days`."""
    if not closed_windows(windows, now):
        return now
    limit = now + timedelta(days=days)
    candidates = sorted({s for w in windows for s in w.starts(now, days + 1) if now < s <= limit})
    for at in candidates:
        if not closed_windows(windows, at):
            return at
    return None


def open_until(windows: Sequence[Window], at: datetime) -> datetime:
    """When the first of `windows`, all open at `at`, closes: until then all stay open."""
    return min(w.closes_after(at) for w in windows)


def hhmm(value: time | None) -> str:
    return "24:00" if value is None else value.strftime("%H:%M")
