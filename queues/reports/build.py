"""Building the program report for a pharmacy (or all of the user's pharmacies) and a period.

The period is a range of the pharmacy's local dates, both ends included. A call belongs to the
period by when it started; follow-up actions belong to it through the call that produced them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from queues.auth import SignedInUser
from queues.errors import NotAllowed, OutreachError
from queues.models import (
    Attempt,
    Campaign,
    DispositionCode,
    Fill,
    FollowUpAction,
    Patient,
    Pharmacy,
    Prescription,
    Task,
)
from queues.reports.model import (
    ADHERENT,
    CampaignLine,
    OfficeOutcome,
    PdcFigures,
    PdcLine,
    PharmacyReport,
    PolicyCheck,
    ProgramReport,
    RefillFigures,
)
from queues.reports.pdc_source import ClassFill, PdcMeasure, pqa_pdc_measure
from queues.reports.policy import window_check
from queues.settings import QueueSettings

ALL = "all"
OFFICE_KIND = "prescriber_office"
NO_TASK = "(no open task)"
CARRY_IN_DAYS = 180  # supply from fills this far before a window may still cover its days
MIN_PDC_WINDOW_DAYS = 90  # a PDC over a shorter span says little (PQA measures a year)
_CHUNK = 500


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
) -> ProgramReport:
    """The report, one section per pharmacy `who` may see. `pdc` defaults to `queues.pdc`."""
    check_period(start, end)
    pharmacies = allowed_pharmacies(session, who, pharmacy)
    measure = pdc if pdc is not None else pqa_pdc_measure()
    sections = tuple(_section(session, ph, start, end, measure, settings) for ph in pharmacies)
    return ProgramReport(start, end, now, who.name, sections)


def _bounds(zone: str, start: date, end: date) -> tuple[datetime, datetime]:
    tz = ZoneInfo(zone)
    lo = datetime.combine(start, datetime.min.time(), tz).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
    return lo, hi


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


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
    start: date,
    end: date,
    measure: PdcMeasure | None,
    settings: QueueSettings | None,
) -> PharmacyReport:
    lo, hi = _bounds(ph.timezone, start, end)
    tz = ZoneInfo(ph.timezone)
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
    calls = _calls(session, ph.id, lo, hi)

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
    all_called = {c.patient_id for c in patient_calls}
    all_reached = {
        c.patient_id for c in patient_calls if reached_codes.get(c.disposition, ("", False))[1]
    }

    office_counts: dict[str, int] = defaultdict(int)
    for c in office:
        office_counts[c.disposition] += 1
    outcomes = tuple(
        OfficeOutcome(code, reached_codes.get(code, (code, False))[0], n)
        for code, n in sorted(office_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )

    actions = _actions(session, ph.id, lo, hi)
    refills = _refills(session, [a for a in actions if a.kind == "refill_request"], tz)
    vaccines: dict[str, int] = defaultdict(int)
    for a in actions:
        if a.kind == "vaccine_interest":
            vaccines[str(a.detail.get("vaccine") or "unspecified")] += 1

    check_name, inside = window_check(session, ph, {c.patient_id for c in patient_calls}, settings)
    outside = tuple(c.id for c in patient_calls if not inside(c.started_at, c.patient_id, c.number))

    return PharmacyReport(
        code=ph.code,
        name=ph.name,
        timezone=ph.timezone,
        patients_called=len(all_called),
        patients_reached=len(all_reached),
        attempts=len(patient_calls),
        campaigns=tuple(lines),
        refills=refills,
        med_sync_enrollments=len(
            {a.patient_id for a in actions if a.kind == "med_sync_enrollment"}
        ),
        vaccine_interests=sum(vaccines.values()),
        vaccine_by_kind=tuple(sorted(vaccines.items())),
        pharmacist_escalations=sum(1 for a in actions if a.kind == "pharmacist_escalation"),
        pdc=_pdc(session, ph.id, start, end, measure),
        prescriber_calls=len(office),
        prescriber_outcomes=outcomes,
        prescriber_followups=sum(1 for a in actions if a.kind == "prescriber_followup"),
        policy=PolicyCheck(check_name, len(outside), outside),
    )


def _calls(session: Session, pharmacy_id: int, lo: datetime, hi: datetime) -> list[_Call]:
    rows = session.execute(
        select(
            Attempt.id,
            Attempt.patient_id,
            Attempt.started_at,
            Attempt.disposition,
            Attempt.phone_number,
            Attempt.task_ids,
        )
        .join(Patient, Patient.id == Attempt.patient_id)
        .where(
            Patient.pharmacy_id == pharmacy_id, Attempt.started_at >= lo, Attempt.started_at < hi
        )
        .order_by(Attempt.started_at, Attempt.id)
    ).all()
    task_ids = sorted({t for r in rows for t in _open_tasks(r.task_ids)})
    task_campaign: dict[int, int] = {}
    for chunk in _chunks(task_ids):
        for task_id, campaign_id in session.execute(
            select(Task.id, Task.campaign_id).where(Task.id.in_(chunk))
        ):
            task_campaign[task_id] = campaign_id
    return [
        _Call(
            r.id,
            r.patient_id,
            r.started_at,
            r.disposition,
            r.phone_number,
            tuple(
                sorted({task_campaign[t] for t in _open_tasks(r.task_ids) if t in task_campaign})
            ),
        )
        for r in rows
    ]


def _open_tasks(task_ids: Any) -> list[int]:
    if not isinstance(task_ids, dict):
        return []
    return [int(t) for t in task_ids.get("open", []) if isinstance(t, int | str)]


@dataclass(frozen=True)
class _Action:
    kind: str
    patient_id: int
    prescription_id: int | None
    called_at: datetime
    detail: dict[str, Any]


def _actions(session: Session, pharmacy_id: int, lo: datetime, hi: datetime) -> list[_Action]:
    rows = session.execute(
        select(
            FollowUpAction.kind,
            FollowUpAction.patient_id,
            FollowUpAction.prescription_id,
            Attempt.started_at,
            FollowUpAction.detail,
        )
        .join(Attempt, Attempt.id == FollowUpAction.attempt_id)
        .where(
            FollowUpAction.pharmacy_id == pharmacy_id,
            Attempt.started_at >= lo,
            Attempt.started_at < hi,
        )
        .order_by(FollowUpAction.id)
    )
    return [_Action(r[0], r[1], r[2], r[3], r[4] if isinstance(r[4], dict) else {}) for r in rows]


def _refills(session: Session, requests: list[_Action], tz: ZoneInfo) -> RefillFigures:
    rx_ids = sorted({a.prescription_id for a in requests if a.prescription_id is not None})
    fills: dict[int, list[date]] = defaultdict(list)
    for chunk in _chunks(rx_ids):
        for rx, day in session.execute(
            select(Fill.prescription_id, Fill.fill_date).where(Fill.prescription_id.in_(chunk))
        ):
            fills[rx].append(day)
    days: list[int] = []
    for a in requests:
        if a.prescription_id is None:
            continue
        call_day = a.called_at.astimezone(tz).date()
        after = [d for d in fills.get(a.prescription_id, []) if d >= call_day]
        if after:
            days.append((min(after) - call_day).days)
    return RefillFigures(len(requests), len(days), tuple(sorted(days)))


def pdc_windows(start: date, end: date) -> tuple[int, tuple[date, date], tuple[date, date]]:
    """Window length, the window that ends the day before `start`, the one that ends on `end`."""
    days = max((end - start).days + 1, MIN_PDC_WINDOW_DAYS)
    before = (start - timedelta(days=days), start - timedelta(days=1))
    after = (end - timedelta(days=days - 1), end)
    return days, before, after


def _pdc(
    session: Session, pharmacy_id: int, start: date, end: date, measure: PdcMeasure | None
) -> PdcFigures:
    days, w0, w1 = pdc_windows(start, end)
    if measure is None:
        return PdcFigures(
            False, "PDC not available: the PQA PDC module (queues.pdc) is missing", days, w0, w1, ()
        )
    by_key: dict[tuple[str, int], list[ClassFill]] = defaultdict(list)
    rows = session.execute(
        select(
            Prescription.pqa_class,
            Prescription.patient_id,
            Prescription.ingredient,
            Fill.fill_date,
            Fill.days_supply,
        )
        .join(Fill, Fill.prescription_id == Prescription.id)
        .join(Patient, Patient.id == Prescription.patient_id)
        .where(
            Patient.pharmacy_id == pharmacy_id,
            Prescription.pqa_class.is_not(None),
            Fill.fill_date >= w0[0] - timedelta(days=CARRY_IN_DAYS),
            Fill.fill_date <= w1[1],
        )
        .order_by(Fill.fill_date)
    )
    for cls, patient_id, drug, day, supply in rows:
        by_key[(str(cls), patient_id)].append(ClassFill(drug, day, supply))
    Pair = tuple[tuple[float, bool] | None, tuple[float, bool] | None]
    per_class: dict[str, list[Pair]] = defaultdict(list)
    for (cls, _patient), fills in sorted(by_key.items()):
        before = [f for f in fills if f.fill_date <= w0[1]]
        per_class[cls].append((measure(before, *w0) if before else None, measure(fills, *w1)))
    lines = []
    for cls, pairs in sorted(per_class.items()):
        s = [a for a, _ in pairs if a is not None]
        e = [b for _, b in pairs if b is not None]
        both = [(a[1], b[1]) for a, b in pairs if a is not None and b is not None]
        lines.append(
            PdcLine(
                pqa_class=cls,
                patients_start=len(s),
                patients_end=len(e),
                mean_start=sum(v for v, _ in s) / len(s) if s else None,
                mean_end=sum(v for v, _ in e) / len(e) if e else None,
                adherent_start=sum(1 for _, ok in s if ok),
                adherent_end=sum(1 for _, ok in e if ok),
                crossed_up=sum(1 for was, now in both if now and not was),
                crossed_down=sum(1 for was, now in both if was and not now),
            )
        )
    note = (
        f"PQA PDC over {days}-day windows: {w0[0]} to {w0[1]} (start), "
        f"{w1[0]} to {w1[1]} (end), from each patient's first fill in the window; supply on "
        f"hand from earlier fills carries in; adherent at {ADHERENT:.2f} or more"
    )
    return PdcFigures(True, note, days, w0, w1, tuple(lines))
