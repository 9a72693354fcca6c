"""A compliance verdict: may this patient (or this number) be called now, and if not, why and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from queues.compliance.windows import zone
from queues.errors import NotCallable
from queues.views.reasons import WINDOW_CODES, WINDOW_PREFIXES, is_window_code

__all__ = ["WINDOW_CODES", "WINDOW_PREFIXES", "Reason", "Verdict", "is_window_code"]


# Codes that mean "not now, later today or soon": the calling-window family.
@dataclass(frozen=True)
class Reason:
    code: str  # short and stable: state_window_FL, weekly_cap, dnc_patient …
    sentence: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "sentence": self.sentence}


@dataclass(frozen=True)
class Verdict:
    callable: bool
    reasons: tuple[Reason, ...]
    # When the patient becomes callable (None: not within the search horizon, or never by itself).
    next_open_at: datetime | None
    zones: tuple[str, ...]
    states: tuple[str, ...]
    numbers: tuple[str, ...] = ()  # the numbers that may be dialed now
    notes: tuple[str, ...] = ()  # things worth knowing that do not block (an unclear best time)
    # A callable verdict holds, unless the facts change, until this instant: the first of the
    # open numbers' windows to close (None when not callable). The claim caches it.
    open_until: datetime | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    @property
    def home_zone(self) -> str:
        return self.zones[0] if self.zones else "UTC"

    def next_open_local(self) -> datetime | None:
        """`next_open_at` in the patient's home zone, so its offset says where the clock is."""
        if self.next_open_at is None:
            return None
        return self.next_open_at.astimezone(zone(self.home_zone))

    def as_json(self) -> dict[str, Any]:
        local = self.next_open_local()
        return {
            "callable": self.callable,
            "reasons": [r.as_json() for r in self.reasons],
            "next_open_at": local.isoformat() if local else None,
            "zones": list(self.zones),
            "states": list(self.states),
            "numbers": list(self.numbers),
            "notes": list(self.notes),
        }

    def raise_if_blocked(self) -> None:
        if self.callable:
            return
        first = self.reasons[0]
        raise NotCallable(first.sentence, self.next_open_at, code=first.code)
