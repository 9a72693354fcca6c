"""Build the outreach queues: campaign rules say which tasks are due; reconcile makes the tables agree.

Idempotent: running it twice changes nothing. A task that is no longer due (the patient refilled)
closes as "resolved_without_call". Each patient with open tasks has one queue entry (one call).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from queues.models import Campaign, Fill, Patient, Prescription, QueueEntry, Task
from queues.settings import QueueSettings
from queues.supply import run_out_date

RESOLVED_WITHOUT_CALL = "resolved_without_call"
NO_DUE_DATE_DAYS = 30  # tasks without a run-out date sort as if due this far ahead


@dataclass(frozen=True)
class DueTask:
    patient_id: int
    campaign_id: int
    subject: str
    reason: str
    due_on: date | None = None
    prescription_id: int | None = None
    priority_parts: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.campaign_id, self.patient_id, self.subject)


@dataclass(frozen=True)
class BuildContext:
    session: Session
    now: datetime
    today: date
    settings: QueueSettings
    campaigns: dict[tuple[int | None, str], int]  # (pharmacy or None, kind) -> campaign id

    def campaign_for(self, pharmacy_id: int, kind: str) -> int | None:
        return self.campaigns.get((pharmacy_id, kind)) or self.campaigns.get((None, kind))


Rule = Callable[[BuildContext], Iterable[DueTask]]


@dataclass(frozen=True)
class BuildResult:
    created: int
    closed: int
    updated: int
    open_tasks: int
    queued_patients: int


def refill_reminder_rule(ctx: BuildContext) -> Iterator[DueTask]:
    """A chronic prescription whose supply runs out within N days (or has run out this month)."""
    rows = ctx.session.execute(
        select(
            Prescription.id,
            Prescription.patient_id,
            Patient.pharmacy_id,
            Prescription.refills_left,
            Fill.fill_date,
            Fill.days_supply,
        )
        .join(Fill, Fill.prescription_id == Prescription.id)
        .join(Patient, Patient.id == Prescription.patient_id)
        .where(
            Prescription.chronic.is_(True),
            Prescription.active.is_(True),
            Patient.do_not_call.is_(False),
            Patient.deceased.is_(False),
        )
        .order_by(Prescription.id)
    )
    horizon = ctx.today + timedelta(days=ctx.settings.refill_window_days)
    oldest = ctx.today - timedelta(days=30)  # past that the patient has likely stopped the drug
    by_rx: dict[int, list[tuple[date, int]]] = defaultdict(list)
    meta: dict[int, tuple[int, int, int]] = {}
    for rx_id, patient_id, pharmacy_id, refills_left, fill_date, days_supply in rows:
        by_rx[rx_id].append((fill_date, days_supply))
        meta[rx_id] = (patient_id, pharmacy_id, refills_left)
    for rx_id, fills in by_rx.items():
        patient_id, pharmacy_id, refills_left = meta[rx_id]
        run_out = run_out_date(fills)
        if run_out is None or not (oldest <= run_out <= horizon):
            continue
        campaign_id = ctx.campaign_for(pharmacy_id, "refill_reminder")
        if campaign_id is None:
            continue
        days = (run_out - ctx.today).days
        when = f"ran out {-days} day(s) ago" if days < 0 else f"runs out in {days} day(s)"
        renewal = "; renewal needed (no refills left)" if refills_left <= 0 else ""
        yield DueTask(
            patient_id=patient_id,
            campaign_id=campaign_id,
            subject=f"rx:{rx_id}:{run_out.isoformat()}",
            reason=f"Refill reminder: a chronic medication {when} ({run_out:%b %d}){renewal}",
            due_on=run_out,
            prescription_id=rx_id,
            priority_parts={"days_to_run_out": days},
        )


DEFAULT_RULES: tuple[Rule, ...] = (refill_reminder_rule,)


def _sort_key(due_on: date | None, today: date) -> float:
    return float((due_on or today + timedelta(days=NO_DUE_DATE_DAYS)).toordinal())


def build_queues(
    session: Session,
    now: datetime,
    settings: QueueSettings | None = None,
    rules: Iterable[Rule] = DEFAULT_RULES,
) -> BuildResult:
    """Bring tasks and queue entries in line with the rules, in the caller's transaction."""
    settings = settings or QueueSettings()
    today = now.date()
    campaigns = {(c.pharmacy_id, c.kind): c.id for c in session.scalars(select(Campaign)).all()}
    ctx = BuildContext(session, now, today, settings, campaigns)
    due: dict[tuple[int, int, str], DueTask] = {}
    for rule in rules:
        for task in rule(ctx):
            due.setdefault(task.key, task)

    open_rows = session.execute(
        select(Task.id, Task.campaign_id, Task.patient_id, Task.subject, Task.priority_parts).where(
            Task.status == "open"
        )
    ).all()
    existing = {(r.campaign_id, r.patient_id, r.subject): r for r in open_rows}
    to_close = [r.id for key, r in existing.items() if key not in due]
    new = [t for key, t in due.items() if key not in existing]
    changed = [
        {"id": existing[key].id, "priority_parts": t.priority_parts, "reason": t.reason}
        for key, t in due.items()
        if key in existing and existing[key].priority_parts != t.priority_parts
    ]
    if to_close:
        for chunk in _chunks(to_close, 500):
            session.execute(
                update(Task)
                .where(Task.id.in_(chunk))
                .values(status="closed", closed_at=now, closed_reason=RESOLVED_WITHOUT_CALL)
            )
    if new:
        session.execute(
            insert(Task),
            [
                {
                    "patient_id": t.patient_id,
                    "campaign_id": t.campaign_id,
                    "prescription_id": t.prescription_id,
                    "subject": t.subject,
                    "reason": t.reason,
                    "status": "open",
                    "due_on": t.due_on,
                    "priority_parts": t.priority_parts,
                    "created_at": now,
                }
                for t in new
            ],
        )
    if changed:
        session.execute(update(Task), changed)
    queued = _reconcile_entries(session, now, today, due.values())
    return BuildResult(len(new), len(to_close), len(changed), len(due), queued)


def _reconcile_entries(session: Session, now: datetime, today: date, due: Iterable[DueTask]) -> int:
    best: dict[int, float] = {}
    for t in due:
        key = _sort_key(t.due_on, today)
        best[t.patient_id] = min(key, best.get(t.patient_id, key))
    pharmacy_of = dict(session.execute(select(Patient.id, Patient.pharmacy_id)).all())
    entries = {
        e.patient_id: e
        for e in session.execute(
            select(
                QueueEntry.patient_id, QueueEntry.status, QueueEntry.sort_key, QueueEntry.holder_id
            )
        ).all()
    }
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for patient_id, key in best.items():
        entry = entries.get(patient_id)
        if entry is None:
            inserts.append(
                {
                    "patient_id": patient_id,
                    "pharmacy_id": pharmacy_of[patient_id],
                    "status": "open",
                    "sort_key": key,
                    "available_at": now,
                }
            )
        elif entry.status != "open" or entry.sort_key != key:
            row: dict[str, Any] = {"patient_id": patient_id, "sort_key": key}
            if entry.status != "open":
                row.update(status="open", available_at=now)
            updates.append(row)
    finished = [
        pid
        for pid, e in entries.items()
        if pid not in best and e.status == "open" and e.holder_id is None
    ]
    if inserts:
        session.execute(insert(QueueEntry), inserts)
    if updates:
        session.execute(update(QueueEntry), updates)
    for chunk in _chunks(finished, 500):
        session.execute(
            update(QueueEntry).where(QueueEntry.patient_id.in_(chunk)).values(status="done")
        )
    return len(best)


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
