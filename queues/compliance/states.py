"""State calling rules stricter than the federal window, from `COMPLIANCE.md` (sources there).

Each rule applies in the called party's local time. The console applies it when the patient's
address is in the state or when one of their numbers has the state's area code (Florida, Oklahoma
and Maryland presume that such a number reaches a resident; we read every state that way).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time


@dataclass(frozen=True)
class StateRule:
    state: str
    start: time
    end: time
    no_sundays: bool = False
    no_holidays: bool = False
    # Calls on the same subject per rolling 24 hours (None: the state sets no such cap).
    same_subject_cap_24h: int | None = None
    source: str = ""


def _rule(
    state: str,
    start: int,
    end: int,
    source: str,
    *,
    sundays: bool = False,
    holidays: bool = False,
    cap: int | None = None,
) -> StateRule:
    return StateRule(state, time(start), time(end), sundays, holidays, cap, source)


STATE_RULES: dict[str, StateRule] = {
    r.state: r
    for r in (
        _rule("FL", 8, 20, "Fla. Stat. 501.616(6)", cap=3),
        _rule("OK", 8, 20, "15 O.S. 775C", cap=3),
        _rule("MD", 8, 20, "Maryland Stop the Spam Calls Act", cap=3),
        _rule("AL", 8, 20, "Alabama calling-hours rule", sundays=True, holidays=True),
        _rule("LA", 8, 20, "Louisiana calling-hours rule", sundays=True, holidays=True),
        _rule("MS", 8, 20, "Mississippi calling-hours rule", sundays=True),
        _rule("CT", 9, 20, "Connecticut calling-hours rule"),
        _rule("MA", 8, 20, "Massachusetts calling-hours rule"),
        _rule("MI", 9, 21, "Michigan calling-hours rule"),
        _rule("MN", 9, 21, "Minnesota calling-hours rule"),
        _rule("NM", 9, 21, "New Mexico calling-hours rule"),
        _rule("NV", 9, 20, "Nevada calling-hours rule"),
        _rule("KY", 10, 21, "Kentucky calling-hours rule"),
    )
}

STATE_NAMES: dict[str, str] = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Washington D.C.": "DC", "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID",
    "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY",
    "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI",
    "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE",
    "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM",
    "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH",
    "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI",
    "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT",
    "Vermont": "VT", "Virginia": "VA", "Washington": "WA", "West Virginia": "WV",
    "Wisconsin": "WI", "Wyoming": "WY", "Puerto Rico": "PR",
}  # fmt: skip
US_STATES = frozenset(STATE_NAMES.values())
