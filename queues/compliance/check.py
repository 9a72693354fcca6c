"""The calling rules applied to the facts about one patient at one instant (no database here).

Order of the reasons: blocks that only a person can lift (do-not-call, deceased, consent, no usable
number), then frequency caps, then the calling windows. A verdict is callable when no block holds and
at least one usable number is inside every window (its best time to call included).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from queues.compliance.besttime import BestTimeUnclear, parse_best_time
from queues.compliance.limits import Limits
from queues.compliance.states import STATE_NAMES, STATE_RULES
from queues.compliance.verdict import Reason, Verdict
from queues.compliance.windows import (
    Window,
    closed_windows,
    hhmm,
    holiday_name,
    next_open,
    open_until,
)
from queues.compliance.zones import place_of_number, place_of_zip
from queues.timeutil import as_utc

STATE_TITLES = {code: name for name, code in STATE_NAMES.items()}
DAY = timedelta(hours=24)
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class PhoneFacts:
    number: str  # E.164
    best_time: str | None = None
    wrong_number: bool = False
    do_not_call: bool = False


@dataclass(frozen=True)
class PharmacyHours:
    code: str
    timezone: str
    opens_at: time
    closes_at: time


@dataclass(frozen=True)
class PatientFacts:
    zip_code: str
    state: str | None
    phones: tuple[PhoneFacts, ...]
    do_not_call: bool = False
    deceased: bool = False
    consent_to_call: bool | None = None  # False: the patient refused calls
    # Start times of past dials (any program) in the last 7 days.
    attempts: tuple[datetime, ...] = ()
    # Those of them that asked about a subject still open (for the states' same-subject caps).
    same_subject_attempts: tuple[datetime, ...] = ()
    notes: tuple[str, ...] = field(default=())


def _is_sunday(day: date) -> bool:
    return day.weekday() == 6


def _holiday_in(state: str) -> Callable[[date], bool]:
    def closed(day: date) -> bool:
        return holiday_name(state, day) is not None

    return closed


def _state_windows(state: str, zones: Sequence[str]) -> list[Window]:
    rule = STATE_RULES.get(state)
    if rule is None:
        return []
    title = STATE_TITLES.get(state, state)
    out: list[Window] = []
    for z in zones:
        out.append(
            Window(
                f"state_window_{state}",
                z,
                rule.start,
                rule.end,
                f"{title} allows calls {hhmm(rule.start)}–{hhmm(rule.end)} local time "
                f"({rule.source}); it is {{local}}.",
            )
        )
        if rule.no_sundays:
            out.append(
                Window(
                    f"state_sunday_{state}",
                    z,
                    time(0),
                    None,
                    f"{title} forbids calls on Sundays; it is {{local}}.",
                    _is_sunday,
                )
            )
        if rule.no_holidays:
            out.append(
                Window(
                    f"state_holiday_{state}",
                    z,
                    time(0),
                    None,
                    f"{title} forbids calls on legal holidays; it is {{local}}, {{holiday}}.",
                    _holiday_in(state),
                    holiday_state=state,
                )
            )
    return out


def whereabouts(
    zip_code: str, state: str | None, numbers: Iterable[str]
) -> tuple[list[str], list[str], str | None]:
    """Where the patient may be, from the address and the numbers that reach them: the time zones
    and the states (each once, the home ones first), and the home state."""
    home = place_of_zip(zip_code)
    places = [place_of_number(n) for n in numbers]
    zones: list[str] = list(home.zones)
    for place in places:
        zones.extend(z for z in place.zones if z not in zones)
    states: list[str] = []
    for s in (state, home.state, *(p.state for p in places)):
        if s and s not in states:
            states.append(s)
    return zones, states, state or home.state


def legal_windows(
    zones: Sequence[str],
    states: Sequence[str],
    limits: Limits,
    pharmacy: PharmacyHours | None,
    home_state: str | None,
) -> list[Window]:
    """Every window that must be open, in every zone the patient may be in."""
    windows: list[Window] = []
    for z in zones:
        windows.append(
            Window(
                "federal_window",
                z,
                time(8),
                time(21),
                "Federal calling hours are 08:00–21:00 in the called party's local time "
                "(47 CFR 64.1200(c)(1)); it is {local}.",
            )
        )
        if limits.tightened:
            windows.append(
                Window(
                    "calling_window",
                    z,
                    limits.window_start,
                    limits.window_end,
                    f"This pharmacy calls {hhmm(limits.window_start)}–{hhmm(limits.window_end)} "
                    "patient time; it is {local}.",
                )
            )
        if limits.no_sundays:
            windows.append(
                Window(
                    "no_sundays",
                    z,
                    time(0),
                    None,
                    "This pharmacy makes no calls on Sundays; it is {local}.",
                    _is_sunday,
                )
            )
        if limits.no_holidays:
            calendar = home_state or ""
            windows.append(
                Window(
                    "holiday",
                    z,
                    time(0),
                    None,
                    "This pharmacy makes no calls on legal holidays; it is {local}, {holiday}.",
                    _holiday_in(calendar),
                    holiday_state=calendar,
                )
            )
    for state in states:
        windows.extend(_state_windows(state, zones))
    if pharmacy is not None:
        closes = None if pharmacy.closes_at == time(0) else pharmacy.closes_at
        windows.append(
            Window(
                "pharmacy_hours",
                pharmacy.timezone,
                pharmacy.opens_at,
                closes,
                f"{pharmacy.code} is open {hhmm(pharmacy.opens_at)}–{hhmm(closes)} "
                f"({pharmacy.timezone}); it is {{local}} there.",
            )
        )
    return windows


def _cap_release(
    times: Sequence[datetime], now: datetime, span: timedelta, cap: int
) -> datetime | None:
    """When the count of `times` within the rolling `span` drops below `cap` (None: it is below)."""
    recent = sorted(t for t in times if t > now - span)
    if cap <= 0 or len(recent) < cap:  # a zero cap is a block of its own
        return None
    # The oldest calls must age out until only cap-1 are left.
    return recent[len(recent) - cap] + span


def evaluate(
    facts: PatientFacts,
    limits: Limits,
    now: datetime,
    *,
    pharmacy: PharmacyHours | None = None,
    number: str | None = None,
) -> Verdict:
    """The verdict for the patient now; with `number`, for dialing that number now."""
    now = as_utc(now)
    notes = list(facts.notes)
    blocks: list[Reason] = []
    caps: list[tuple[Reason, datetime]] = []

    reaching = [p for p in facts.phones if not p.wrong_number]
    zones, states, home_state = whereabouts(
        facts.zip_code, facts.state, (p.number for p in reaching)
    )

    if facts.deceased:
        blocks.append(Reason("deceased", "The patient is recorded as deceased."))
    if facts.do_not_call:
        blocks.append(Reason("dnc_patient", "The patient asked not to be called."))
    if facts.consent_to_call is False:
        blocks.append(Reason("consent_refused", "The patient has refused outreach calls."))
    dialable = [p for p in reaching if not p.do_not_call]
    if number is not None:
        chosen = [p for p in facts.phones if p.number == number]
        if not chosen:
            blocks.append(
                Reason("unknown_number", f"{number} is not one of the patient's numbers.")
            )
        elif chosen[0].wrong_number:
            blocks.append(Reason("wrong_number", f"{number} is flagged as a wrong number."))
        elif chosen[0].do_not_call:
            blocks.append(Reason("dnc_number", f"{number} is on the patient's do-not-call list."))
        dialable = [p for p in dialable if p.number == number]
    elif not facts.phones:
        blocks.append(Reason("no_phone", "The patient has no phone number on file."))
    elif not dialable:
        blocks.append(
            Reason("no_usable_number", "Every number is flagged do-not-call or wrong number.")
        )
    home = place_of_zip(facts.zip_code)
    if not home.zones and zones:
        # An address's ZIP that does not exist says nothing: the numbers' area codes decide,
        # and the verdict says so (a mistyped ZIP must never pass unnoticed).
        notes.append(
            f"ZIP {facts.zip_code!r} is not a known US ZIP code: the time zone and state come "
            f"from the number's area code ({', '.join(zones)}"
            + (f"; {', '.join(states)}" if states else "")
            + "). Correct the address."
        )
    if not zones:
        blocks.append(
            Reason(
                "zone_unknown",
                f"No time zone is known for ZIP {facts.zip_code!r} or the patient's numbers, "
                "so the calling window cannot be checked.",
            )
        )

    for name, cap in (("weekly_cap", limits.weekly_cap), ("daily_cap", limits.daily_cap)):
        if cap <= 0:  # a pharmacy that paused its calls
            blocks.append(Reason(name, f"This pharmacy's {name.replace('_', ' ')} is 0: no calls."))
    weekly = _cap_release(facts.attempts, now, WEEK, limits.weekly_cap)
    if weekly is not None:
        caps.append(
            (
                Reason(
                    "weekly_cap",
                    f"{limits.weekly_cap} call(s) in the last 7 days, the most allowed per week.",
                ),
                weekly,
            )
        )
    daily = _cap_release(facts.attempts, now, DAY, limits.daily_cap)
    if daily is not None:
        caps.append(
            (
                Reason(
                    "daily_cap",
                    f"{limits.daily_cap} call(s) in the last 24 hours, the most allowed per day.",
                ),
                daily,
            )
        )
    for state in states:
        rule = STATE_RULES.get(state)
        if rule is None or rule.same_subject_cap_24h is None:
            continue
        cap = min(rule.same_subject_cap_24h, limits.same_subject_cap_24h)
        release = _cap_release(facts.same_subject_attempts, now, DAY, cap)
        if release is not None:
            caps.append(
                (
                    Reason(
                        f"subject_cap_{state}",
                        f"{STATE_TITLES.get(state, state)} allows {cap} call(s) per 24 hours on "
                        f"the same subject ({rule.source}).",
                    ),
                    release,
                )
            )

    windows = legal_windows(zones, states, limits, pharmacy, home_state)
    # Each dialable number adds its best time to call, read in the patient's home zone.
    home_zone = zones[0] if zones else "UTC"
    per_number: list[tuple[PhoneFacts, list[Window]]] = []
    for phone in dialable:
        extra: list[Window] = []
        try:
            best = parse_best_time(phone.best_time)
        except BestTimeUnclear as why:
            notes.append(f"best time for {phone.number} ignored: {why}")
            best = None
        if best is not None:
            extra.append(
                Window(
                    "best_time",
                    home_zone,
                    best[0],
                    best[1],
                    f"The patient asked to be called {phone.best_time} on {phone.number}; "
                    "it is {local}.",
                )
            )
        per_number.append((phone, windows + extra))

    start = max([now, *(t for _, t in caps)])
    open_numbers = tuple(p.number for p, ws in per_number if not closed_windows(ws, now))
    if blocks or not zones:
        next_at = None
    else:
        opens = [t for _, ws in per_number if (t := next_open(ws, start)) is not None]
        next_at = min(opens) if opens else None

    reasons: list[Reason] = blocks + [r for r, _ in caps]
    if not open_numbers and per_number:
        seen: set[str] = set()
        closed_legal = closed_windows(windows, now)
        if closed_legal:
            for w in closed_legal:
                if w.code not in seen:
                    seen.add(w.code)
                    reasons.append(Reason(w.code, w.describe(now)))
        else:  # only the best times are closed: name the first number's
            for w in closed_windows(per_number[0][1], now):
                if w.code not in seen:
                    seen.add(w.code)
                    reasons.append(Reason(w.code, w.describe(now)))
    ok = not reasons and bool(open_numbers)
    until = None
    if ok:  # callable while any open number's windows all stay open
        until = max(open_until(ws, now) for p, ws in per_number if p.number in open_numbers)
    return Verdict(
        callable=ok,
        reasons=tuple(reasons),
        next_open_at=now if ok else next_at,
        zones=tuple(zones),
        states=tuple(states),
        numbers=open_numbers if not blocks and not caps else (),
        notes=tuple(notes),
        open_until=until,
    )
