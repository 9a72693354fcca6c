"""The limits in force for one pharmacy: the site's settings, tightened by the pharmacy's own.

A pharmacy's `calling_limits` (a JSON object in the database) may only tighten: a later start, an
earlier end, lower caps, Sundays or holidays off. A looser value is ignored, never applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from typing import Any

from queues.errors import ConfigError
from queues.settings import QueueSettings, parse_hhmm

FEDERAL_START = time(8)
FEDERAL_END = time(21)

PHARMACY_KEYS = {
    "calling_window_start": str,
    "calling_window_end": str,
    "daily_attempt_cap": int,
    "weekly_attempt_cap": int,
    "same_subject_cap_24h": int,
    "no_calls_on_sundays": bool,
    "no_calls_on_holidays": bool,
}


@dataclass(frozen=True)
class Limits:
    window_start: time
    window_end: time  # never past 21:00
    daily_cap: int
    weekly_cap: int
    same_subject_cap_24h: int
    no_sundays: bool
    no_holidays: bool

    @property
    def tightened(self) -> bool:
        return (self.window_start, self.window_end) != (FEDERAL_START, FEDERAL_END)

    def as_json(self) -> dict[str, Any]:
        return {
            "calling_window": [
                self.window_start.strftime("%H:%M"),
                self.window_end.strftime("%H:%M"),
            ],
            "daily_cap": self.daily_cap,
            "weekly_cap": self.weekly_cap,
            "same_subject_cap_24h": self.same_subject_cap_24h,
            "no_sundays": self.no_sundays,
            "no_holidays": self.no_holidays,
        }


def _window(start_text: str, end_text: str, key: str, where: str) -> tuple[time, time]:
    start = parse_hhmm(start_text, f"{key}calling_window_start", where) or FEDERAL_START
    end = parse_hhmm(end_text, f"{key}calling_window_end", where) or FEDERAL_END
    return max(start, FEDERAL_START), min(end, FEDERAL_END)


@lru_cache(maxsize=64)
def site_limits(settings: QueueSettings) -> Limits:
    start, end = _window(
        settings.calling_window_start, settings.calling_window_end, "queue.", "[queue]"
    )
    return Limits(
        start,
        end,
        settings.daily_attempt_cap,
        settings.weekly_attempt_cap,
        settings.same_subject_cap_24h,
        settings.no_calls_on_sundays,
        settings.no_calls_on_holidays,
    )


def check_pharmacy_limits(overrides: dict[str, Any], where: str) -> None:
    """Raise ConfigError naming the pharmacy and key for anything unknown or mistyped."""
    for key, value in overrides.items():
        expected = PHARMACY_KEYS.get(key)
        if expected is None:
            known = ", ".join(sorted(PHARMACY_KEYS))
            raise ConfigError(where, key, f"unknown limit; expected one of: {known}")
        if type(value) is not expected:
            raise ConfigError(where, key, f"expected {expected.__name__}, got {value!r}")
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise ConfigError(where, key, f"expected 0 or more, got {value}")
        if isinstance(value, str):
            parse_hhmm(value, key, where)


def pharmacy_limits(site: Limits, overrides: dict[str, Any] | None, where: str) -> Limits:
    """`site` tightened by one pharmacy's overrides (validated first)."""
    if not overrides:
        return site
    check_pharmacy_limits(overrides, where)
    start = site.window_start
    end = site.window_end
    if "calling_window_start" in overrides:
        start = max(start, parse_hhmm(overrides["calling_window_start"], "", where) or start)
    if "calling_window_end" in overrides:
        end = min(end, parse_hhmm(overrides["calling_window_end"], "", where) or end)
    return Limits(
        start,
        end,
        min(site.daily_cap, overrides.get("daily_attempt_cap", site.daily_cap)),
        min(site.weekly_cap, overrides.get("weekly_attempt_cap", site.weekly_cap)),
        min(
            site.same_subject_cap_24h,
            overrides.get("same_subject_cap_24h", site.same_subject_cap_24h),
        ),
        site.no_sundays or bool(overrides.get("no_calls_on_sundays", False)),
        site.no_holidays or bool(overrides.get("no_calls_on_holidays", False)),
    )
