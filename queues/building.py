"""Build the outreach queues: campaign rules say which tasks are due; reconcile makes the tables agree.

Idempotent: running it twice changes nothing. A task that is no longer due closes as
"resolved_without_call", or as "filled" when a new fill answered it — then the last call that asked
is credited with it. Each patient with open tasks has one queue entry: one call for all subjects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from queues.models import Attempt, QueueEntry, Task
from queues.priority import patient_score
from queues.rules import default_rules
from queues.rules.base import DueTask, Rule, RuleContext, run_rule
from queues.rules.snapshot import Snapshot, load_snapshot
from queues.settings import QueueSettings

RESOLVED_WITHOUT_CALL = "resolved_without_call"
FILLED = "filled"
CAMPAIGN_PAUSED = "campaign_paused"
# A task closed for these reasons comes back when its rule says it is due again.
REOPENABLE = (RESOLVED_WITHOUT_CALL, CAMPAIGN_PAUSED)


@dataclass(frozen=True)
class BuildResult:
    created: int
    reopened: int
    closed: int
    filled: int
    updated: int
    open_tasks: int
    queued_patients: int

    def describe(self) -> str:
        return (
            f"{self.open_tasks} tasks due for {self.queued_patients} patients: {self.created} new, "
            f"{self.reopened} reopened, {self.updated} rescored, {self.closed} closed "
            f"({self.filled} answered by a fill)"
        )


def due_tasks(
    snapshot: Snapshot, now: datetime, settings: QueueSettings, rules: Iterable[Rule]
) -> dict[tuple[int, int, str], DueTask]:
    due: dict[tuple[int, int, str], DueTask] = {}
    rules = tuple(rules)
    for zone, part in snapshot.by_zone().items():
        ctx = RuleContext(part, now, now.astimezone(ZoneInfo(zone)).date(), settings)
        for rule in rules:
            for task in run_rule(rule, ctx):
                due.setdefault(task.key, task)
    return due


def build_queues(
    session: Session,
    now: datetime,
    settings: QueueSettings | None = None,
    rules: Iterable[Rule] | None = None,
) -> BuildResult:
    """Bring tasks and queue entries in line with the rules, in the caller's transaction."""
    settings = settings or QueueSettings()
    snapshot = load_snapshot(session, now)
    due = due_tasks(snapshot, now, settings, default_rules() if rules is None else rules)

    rows = session.execute(
        select(
            Task.id,
            Task.campaign_id,
            Task.patient_id,
            Task.subject,
            Task.status,
            Task.closed_reason,
            Task.priority_parts,
            Task.reason,
            Task.prescription_id,
            Task.created_at,
        )
    ).all()
    open_by_key = {(r.campaign_id, r.patient_id, r.subject): r for r in rows if r.status == "open"}
    reopenable = {
        (r.campaign_id, r.patient_id, r.subject): r
        for r in rows
        if r.status != "open" and r.closed_reason in REOPENABLE
    }
    known = {(r.campaign_id, r.patient_id, r.subject) for r in rows}

    new = [t for key, t in due.items() if key not in known]
    reopen = [
        {
            "id": reopenable[key].id,
            "status": "open",
            "closed_at": None,
            "closed_reason": None,
            "priority_parts": t.priority_parts,
            "score": t.score,
            "reason": t.reason,
        }
        for key, t in due.items()
        if key in reopenable
    ]
    changed = [
        {
            "id": open_by_key[key].id,
            "priority_parts": t.priority_parts,
            "score": t.score,
            "reason": t.reason,
        }
        for key, t in due.items()
        if key in open_by_key
        and (
            open_by_key[key].priority_parts != t.priority_parts
            or open_by_key[key].reason != t.reason
        )
    ]
    stale = [r for key, r in open_by_key.items() if key not in due]
    closes = list(_closings(session, snapshot, stale, now))
    if closes:
        session.execute(update(Task), closes)
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
                    "score": t.score,
                    "created_at": now,
                }
                for t in new
            ],
        )
    if reopen:
        session.execute(update(Task), reopen)
    if changed:
        session.execute(update(Task), changed)
    queued = _reconcile_entries(session, snapshot, now, due.values())
    filled = sum(1 for c in closes if c["closed_reason"] == FILLED)
    return BuildResult(len(new), len(reopen), len(closes), filled, len(changed), len(due), queued)


def _closings(
    session: Session, snapshot: Snapshot, stale: list[Any], now: datetime
) -> Iterator[dict[str, Any]]:
    """Close tasks no longer due; a refill or adherence task answered by a new fill is "filled"
    and credited to the last call made about it before that fill."""
    class_fills: dict[tuple[int, str], date] = {}
    rx_last: dict[int, date] = {}
    for rx in snapshot.prescriptions:
        fills = snapshot.fills.get(rx.id)
        if not fills:
            continue
        rx_last[rx.id] = fills[-1][0]
        if rx.pqa_class:
            key = (rx.patient_id, rx.pqa_class)
            class_fills[key] = max(class_fills.get(key, fills[-1][0]), fills[-1][0])
    active_campaigns = {cid for cid, _ in snapshot.campaigns.values()}
    asked: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    patients = sorted({r.patient_id for r in stale})
    for chunk in (patients[i : i + 500] for i in range(0, len(patients), 500)):
        for pid, started, attempt_id in session.execute(
            select(Attempt.patient_id, Attempt.started_at, Attempt.id)
            .where(Attempt.patient_id.in_(chunk))
            .order_by(Attempt.started_at)
        ):
            asked[pid].append((started, attempt_id))
    for r in stale:
        last_fill: date | None = None
        if r.prescription_id is not None:
            last_fill = rx_last.get(r.prescription_id)
        elif r.subject.startswith("pdc:"):
            last_fill = class_fills.get((r.patient_id, r.subject.split(":")[1]))
        reason, credit = RESOLVED_WITHOUT_CALL, None
        if r.campaign_id not in active_campaigns:
            reason = CAMPAIGN_PAUSED
        elif last_fill is not None and last_fill >= r.created_at.date():
            reason = FILLED
            before = [
                a
                for started, a in asked.get(r.patient_id, [])
                if r.created_at <= started and started.date() <= last_fill
            ]
            credit = before[-1] if before else None
        yield {
            "id": r.id,
            "status": "closed",
            "closed_at": now,
            "closed_reason": reason,
            "success_attempt_id": credit,
        }


def _reconcile_entries(
    session: Session, snapshot: Snapshot, now: datetime, due: Iterable[DueTask]
) -> int:
    scores: dict[int, list[float]] = defaultdict(list)
    for t in due:
        scores[t.patient_id].append(t.score)
    best = {pid: -patient_score(s) for pid, s in scores.items()}  # lower sorts first
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
                    "pharmacy_id": snapshot.patients[patient_id].pharmacy_id,
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
    for i in range(0, len(finished), 500):
        session.execute(
            update(QueueEntry)
            .where(QueueEntry.patient_id.in_(finished[i : i + 500]))
            .values(status="done")
        )
    return len(best)
