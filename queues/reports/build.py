"""Building the program report for a pharmacy (or all of the user's pharmacies) and a period.

The period is a range of the pharmacy's local dates, both ends included. A call belongs to the
period by when it started; follow-up actions belong to it through the call that produced them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from queues.auth import SignedInUser
from queues.errors import NotAllowed, OutreachError
from queues.reports.fetch import ActionRow, CallRow, Rows, fetch, open_tasks
from queues.reports.figures import REFILL_REQUEST, VACCINE_INTEREST, FigureTally
from queues.reports.model import (
    CampaignLine,
    OfficeOutcome,
    PdcFigures,
    PharmacyReport,
    PolicyCheck,
    ProgramReport,
    RefillFigures,
)
from queues.reports.pdc_figures import pdc_figures
from queues.reports.pdc_source import FastPdc, PdcMeasure, pqa_fast_pdc
from queues.reports.policy import window_check
from queues.settings import QueueSettings
from queues.store.models import Campaign, DispositionCode, Pharmacy

ALL = "all"
OFFICE_KIND = "prescriber_office"
NO_TASK = "(no open task)"
CARRY_IN_DAYS = 180  # supply from fills this far before a window may still cover its days
MIN_PDC_WINDOW_DAYS = 90  # a PDC over a shorter span says little (PQA measures a year)


class ReportNotAllowed(NotAllowed):
    pass


@dataclass(frozen=True)
class Requester:
    """Who asks for the report: a signed-in user, or the operator holding the database URL."""

    name: str
    user_id: int | None
    role: str
    pharmacy_codes: tuple[str, ...] | None  # None: every pharmacy (the operator)

    @classmethod
    def of(cls, user: SignedInUser) -> Requester:
        return cls(user.username, user.id, user.role, user.pharmacy_codes)

    @classmethod
    def operator(cls, name: str) -> Requester:
        return cls(name, None, "operator", None)


def allowed_pharmacies(session: Session, who: Requester, pharmacy: str) -> list[Pharmacy]:
    """The pharmacies `who` may see for `pharmacy` (a code or "all"); refuses agents outright."""
    if who.role not in ("supervisor", "admin", "operator"):
        raise ReportNotAllowed("Only supervisors and admins can run reports.")
    query = select(Pharmacy).order_by(Pharmacy.code)
    if pharmacy != ALL:
        query = query.where(Pharmacy.code == pharmacy)
    found = list(session.scalars(query))
    if pharmacy != ALL and not found:
        raise OutreachError(f"--pharmacy: no pharmacy with code {pharmacy!r}")
    if who.pharmacy_codes is None:
        return found
    mine = [p for p in found if p.code in who.pharmacy_codes]
    if pharmacy != ALL and not mine:
        raise ReportNotAllowed(f"{who.name} is not assigned to pharmacy {pharmacy}.")
    return mine


def check_period(start: date, end: date) -> None:
    if end < start:
        raise OutreachError(f"--to {end} is before --from {start}")


def program_report(
    session: Session,
    who: Requester,
    pharmacy: str,
    start: date,
    end: date,
    now: datetime,
    *,
    pdc: PdcMeasure | None = None,
    settings: QueueSettings | None = None,
    previous: bool = True,
) -> ProgramReport:
    """The report, one section per pharmacy `who` may see. `pdc` defaults to `queues.adherence.pdc`.

    A period that runs past today is measured to today (the report says so): days to come have no
    calls yet, and a PDC window ending in the future counts them as days without supply. With
    `previous`, the period of the same length just before is measured too, to compare against."""
    check_period(start, end)
    pharmacies = allowed_pharmacies(session, who, pharmacy)
    if not pharmacies:
        return ProgramReport(start, end, now, who.name, ())
    today = max(now.astimezone(ZoneInfo(ph.timezone)).date() for ph in pharmacies)
    if start > today:
        raise OutreachError(
            f"--from {start} is after today ({today}): there is nothing to report yet"
        )
    measured = min(end, today)
    sections = _sections(session, pharmacies, start, measured, pdc, settings)
    before: tuple[PharmacyReport, ...] = ()
    days = (measured - start).days + 1
    first_before = start - timedelta(days=days)
    if previous:
        before = _sections(
            session, pharmacies, first_before, start - timedelta(days=1), pdc, settings
        )
    return ProgramReport(
        start,
        end,
        now,
        who.name,
        sections,
        measured_to=measured if measured < end else None,
        previous=before,
        previous_period=(first_before, start - timedelta(days=1)) if previous else None,
    )


def _sections(
    session: Session,
    pharmacies: list[Pharmacy],
    start: date,
    end: date,
    pdc: PdcMeasure | None,
    settings: QueueSettings | None,
) -> tuple[PharmacyReport, ...]:
    measure: FastPdc | PdcMeasure = pqa_fast_pdc() if pdc is None else pdc
    bounds = {ph.id: _bounds(ph.timezone, start, end) for ph in pharmacies}
    days, w0, w1 = pdc_windows(start, end)
    rows = fetch(
        session,
        [ph.id for ph in pharmacies],
        min(lo for lo, _ in bounds.values()),
        max(hi for _, hi in bounds.values()),
        start,
        w0[0] - timedelta(days=CARRY_IN_DAYS),
        w1[1],
    )
    reached_codes = {
        code: (label, reached)
        for code, label, reached in session.execute(
            select(DispositionCode.code, DispositionCode.label, DispositionCode.reached)
        )
    }
    campaigns = {
        cid: (name, kind)
        for cid, name, kind in session.execute(select(Campaign.id, Campaign.name, Campaign.kind))
    }
    pdc_of = {
        ph.id: pdc_figures(rows.pdc.get(ph.id, ()), days, w0, w1, measure) for ph in pharmacies
    }
    return tuple(
        _section(
            session, ph, bounds[ph.id], rows, reached_codes, campaigns, pdc_of[ph.id], settings
        )
        for ph in pharmacies
    )


def _bounds(zone: str, start: date, end: date) -> tuple[datetime, datetime]:
    tz = ZoneInfo(zone)
    lo = datetime.combine(start, datetime.min.time(), tz).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
    return lo, hi


@dataclass(frozen=True)
class _Call:
    id: int
    patient_id: int
    started_at: datetime
    disposition: str
    number: str | None
    campaigns: tuple[int, ...]  # campaign ids of the open tasks the call worked


def _section(
    session: Session,
    ph: Pharmacy,
    bounds: tuple[datetime, datetime],
    rows: Rows,
    reached_codes: dict[str, tuple[str, bool]],
    campaigns: dict[int, tuple[str, str]],
    pdc: PdcFigures,
    settings: QueueSettings | None,
) -> PharmacyReport:
    lo, hi = bounds
    tz = ZoneInfo(ph.timezone)
    calls = _calls(rows.calls.get(ph.id, ()), rows.task_campaign, lo, hi)

    office_ids = {cid for cid, (_, kind) in campaigns.items() if kind == OFFICE_KIND}
    office = [c for c in calls if c.campaigns and set(c.campaigns) <= office_ids]
    patient_calls = [c for c in calls if not (c.campaigns and set(c.campaigns) <= office_ids)]

    called: dict[int | None, set[int]] = defaultdict(set)
    reached: dict[int | None, set[int]] = defaultdict(set)
    tries: dict[int | None, int] = defaultdict(int)
    for c in patient_calls:
        is_reached = reached_codes.get(c.disposition, ("", False))[1]
        keys: Iterable[int | None] = [k for k in c.campaigns if k not in office_ids] or [None]
        for key in keys:
            called[key].add(c.patient_id)
            tries[key] += 1
            if is_reached:
                reached[key].add(c.patient_id)
    lines = sorted(
        (
            CampaignLine(
                campaign=campaigns[key][0] if key is not None else NO_TASK,
                kind=campaigns[key][1] if key is not None else "",
                patients_called=len(called[key]),
                patients_reached=len(reached[key]),
                attempts=tries[key],
            )
            for key in called
        ),
        key=lambda line: (line.kind, line.campaign),
    )
    actions = [a for a in rows.actions.get(ph.id, ()) if lo <= a[3] < hi]
    tally = FigureTally()
    for c in patient_calls:
        tally.call(
            c.id, c.patient_id, c.disposition, reached_codes.get(c.disposition, ("", False))[1]
        )
    for a in actions:
        tally.action(a[6], a[5], a[0], a[1])
    figures = tally.figures()
    counted = {c.id for c in patient_calls}

    office_counts: dict[str, int] = defaultdict(int)
    for c in office:
        office_counts[c.disposition] += 1
    outcomes = tuple(
        OfficeOutcome(code, reached_codes.get(code, (code, False))[0], n)
        for code, n in sorted(office_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )

    refills = _refills(
        [a for a in actions if a[0] == REFILL_REQUEST and a[5] in counted], rows.rx_fills, tz
    )
    vaccines: dict[str, int] = defaultdict(int)
    for kind, _, _, _, detail, attempt_id, _ in actions:
        if kind == VACCINE_INTEREST and attempt_id in counted:
            found = detail.get("vaccine") if isinstance(detail, dict) else None
            vaccines[str(found or "unspecified")] += 1

    all_called = {c.patient_id for c in patient_calls}
    check_name, inside = window_check(session, ph, all_called, settings, homes=rows.homes)
    outside = tuple(c.id for c in patient_calls if not inside(c.started_at, c.patient_id, c.number))

    return PharmacyReport(
        code=ph.code,
        name=ph.name,
        timezone=ph.timezone,
        patients_called=figures.patients_called,
        patients_reached=figures.patients_reached,
        attempts=figures.calls,
        campaigns=tuple(lines),
        refills=refills,
        med_sync_enrollments=figures.med_sync_enrollments,
        vaccine_interests=sum(vaccines.values()),
        vaccine_by_kind=tuple(sorted(vaccines.items())),
        pharmacist_escalations=figures.pharmacist_escalations,
        pdc=pdc,
        prescriber_calls=len(office),
        prescriber_outcomes=outcomes,
        prescriber_followups=sum(1 for a in actions if a[0] == "prescriber_followup"),
        policy=PolicyCheck(check_name, len(outside), outside),
    )


def _calls(
    rows: Iterable[CallRow], task_campaign: dict[int, int], lo: datetime, hi: datetime
) -> list[_Call]:
    out = []
    for aid, patient_id, started_at, disposition, number, task_ids in rows:
        if not lo <= started_at < hi:
            continue  # another pharmacy's zone put it in the fetched range, not in this one
        tasks = open_tasks(task_ids)
        out.append(
            _Call(
                aid,
                patient_id,
                started_at,
                disposition,
                number,
                tuple(sorted({task_campaign[t] for t in tasks if t in task_campaign}))
                if tasks
                else (),
            )
        )
    return out


def _refills(
    requests: list[ActionRow], rx_fills: dict[int, list[date]], tz: ZoneInfo
) -> RefillFigures:
    days: list[int] = []
    for _, _, rx, called_at, *_ in requests:
        if rx is None:
            continue
        call_day = called_at.astimezone(tz).date()
        dates = rx_fills.get(rx, [])
        i = bisect_left(dates, call_day)  # sorted: the first fill on or after the call's day
        if i < len(dates):
            days.append((dates[i] - call_day).days)
    return RefillFigures(len(requests), len(days), tuple(sorted(days)))


def pdc_windows(start: date, end: date) -> tuple[int, tuple[date, date], tuple[date, date]]:
    """Window length, the window that ends the day before `start`, the one that ends on `end`."""
    days = max((end - start).days + 1, MIN_PDC_WINDOW_DAYS)
    before = (start - timedelta(days=days), start - timedelta(days=1))
    after = (end - timedelta(days=days - 1), end)
    return days, before, after
