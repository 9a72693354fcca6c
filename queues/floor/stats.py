"""Queue counts for `outreach queue stats` and the console, and why the due patients are waiting.

The breakdown answers an agent whose queue is empty: "42 patients due: 30 outside their calling
window until 09:00 CST, 8 at their weekly cap, 4 with another agent", and when the next one opens.
It reads the reason the last claim stored on each passed-over patient; patients no claim has looked
at yet are checked live (up to LIVE_CHECKS of them, best first), so the numbers are right at any hour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from queues.compliance.patient import patient_verdict
from queues.compliance.verdict import is_window_code
from queues.compliance.windows import zone
from queues.settings import QueueSettings
from queues.store.models import Attempt, Patient, Pharmacy, QueueEntry, Task
from queues.timeutil import as_utc

LIVE_CHECKS = 500

# Why a due patient waits, in the order the summary names them.
KINDS: dict[str, str] = {
    "calling_window": "outside their calling window",
    "weekly_cap": "at their weekly cap",
    "daily_cap": "at their daily cap",
    "subject_cap": "at a state's same-subject cap",
    "with_agent": "with another agent",
    "callback_reserved": "kept for another agent's callback",
    "retry_later": "waiting for a retry or callback time",
    "record_blocked": "blocked by their record (do-not-call, consent, no usable number)",
}


def kind_of(code: str | None) -> str:
    if code is None:
        return "retry_later"
    if is_window_code(code):
        return "calling_window"
    if code in ("weekly_cap", "daily_cap"):
        return code
    if code.startswith("subject_cap_"):
        return "subject_cap"
    return "record_blocked"


def _when(at: datetime, zone_name: str, now: datetime | None) -> str:
    """09:00 CST today, Thu 09:00 CST on another day (in that zone)."""
    local = at.astimezone(zone(zone_name))
    if now is not None and now.astimezone(zone(zone_name)).date() == local.date():
        return f"{local:%H:%M %Z}"
    return f"{local:%a %H:%M %Z}"


@dataclass(frozen=True)
class WaitGroup:
    kind: str
    count: int
    until: datetime | None  # the earliest of them to open (None: not by itself)
    zone: str  # the zone `until` is shown in (that patient's pharmacy)

    def phrase(self, now: datetime | None = None) -> str:
        text = f"{self.count} {KINDS.get(self.kind, self.kind)}"
        if self.until is not None and self.kind != "with_agent":
            text += f" until {_when(self.until, self.zone, now)}"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "until": self.until.astimezone(zone(self.zone)).isoformat() if self.until else None,
            "label": KINDS.get(self.kind, self.kind),
        }


@dataclass(frozen=True)
class DueBreakdown:
    patients_due: int
    callable_now: int
    groups: tuple[WaitGroup, ...]
    next_callable_at: datetime | None
    next_zone: str = "UTC"
    now: datetime | None = None

    def summary(self) -> str:
        parts = [g.phrase(self.now) for g in self.groups]
        head = f"{self.patients_due} patient{'' if self.patients_due == 1 else 's'} due"
        if self.callable_now:
            parts.insert(0, f"{self.callable_now} callable now")
        text = head + (": " + ", ".join(parts) if parts else "")
        if not self.callable_now and self.next_callable_at is not None:
            text += f". The next one becomes callable at {_when(self.next_callable_at, self.next_zone, self.now)}."
        return text

    def as_json(self) -> dict[str, Any]:
        nxt = self.next_callable_at
        return {
            "patients_due": self.patients_due,
            "callable_now": self.callable_now,
            "groups": [g.as_json() for g in self.groups],
            "next_callable_at": nxt.astimezone(zone(self.next_zone)).isoformat() if nxt else None,
            "summary": self.summary(),
        }


@dataclass(frozen=True)
class QueueStats:
    pharmacies: int
    patients: int
    tasks_open: int
    tasks_claimed: int
    tasks_done: int
    attempts: int
    patients_queued: int
    patients_claimable_now: int
    due: DueBreakdown | None = field(default=None)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        out["due"] = self.due.as_json() if self.due else None
        return out

    def rows(self) -> list[tuple[str, int]]:
        return [
            ("Pharmacies", self.pharmacies),
            ("Patients", self.patients),
            ("Tasks open (unclaimed)", self.tasks_open),
            ("Tasks claimed", self.tasks_claimed),
            ("Tasks done or closed", self.tasks_done),
            ("Attempts", self.attempts),
            ("Patients queued", self.patients_queued),
            ("Patients claimable now", self.patients_claimable_now),
            *self.due_rows(),
        ]

    def due_rows(self) -> list[tuple[str, int]]:
        """The breakdown as table rows: each group's phrase with its count on the right."""
        if self.due is None:
            return []
        rows = [("Patients due", self.due.patients_due), ("  callable now", self.due.callable_now)]
        for group in self.due.groups:
            label = group.phrase(self.due.now).split(" ", 1)[1]
            rows.append((f"  {label}", group.count))
        return rows


def due_breakdown(
    session: Session,
    now: datetime,
    *,
    pharmacy_ids: Sequence[int] | None = None,
    user_id: int | None = None,
    settings: QueueSettings | None = None,
    live_checks: int = LIVE_CHECKS,
) -> DueBreakdown:
    """Why each open queue entry (of these pharmacies; for this agent) is or is not callable now."""
    return _due_pass(session, now, pharmacy_ids, user_id, settings, live_checks)[0]


def _due_pass(
    session: Session,
    now: datetime,
    pharmacy_ids: Sequence[int] | None,
    user_id: int | None,
    settings: QueueSettings | None,
    live_checks: int,
) -> tuple[DueBreakdown, int]:
    """The breakdown, and how many of those entries are claimable now by the queue's own word
    (`available_at` passed, before any compliance check).

    Most open entries are usually due (nobody holds them, no callback keeps them, their time has
    come): those are counted in SQL and only the first `live_checks` of them (best first) are
    read, to be checked live; the others (held, kept, waiting) are read one by one as before. The
    groups are then made in queue order, as one pass over every entry made them."""
    now = as_utc(now)
    qe = QueueEntry
    held = and_(
        qe.holder_id.is_not(None), qe.lease_expires_at.is_not(None), qe.lease_expires_at > now
    )
    kept = [
        qe.reserved_for_id.is_not(None),
        qe.reserved_until.is_not(None),
        qe.reserved_until > now,
    ]
    if user_id is not None:
        kept.append(qe.reserved_for_id != user_id)
    waiting = or_(held, and_(*kept), qe.available_at > now)
    scope = [qe.status == "open"]
    if pharmacy_ids is not None:
        scope.append(qe.pharmacy_id.in_(pharmacy_ids))
    total, due_now, claimable = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((waiting, 0), else_=1)), 0),
            func.coalesce(func.sum(case((qe.available_at <= now, 1), else_=0)), 0),
        ).where(*scope)
    ).one()
    in_order = (qe.sort_key, qe.patient_id)
    others = (
        select(
            *in_order,
            qe.available_at,
            qe.blocked_reason,
            qe.holder_id,
            qe.lease_expires_at,
            qe.reserved_for_id,
            qe.reserved_until,
            Pharmacy.timezone,
        )
        .join(Pharmacy, Pharmacy.id == qe.pharmacy_id)
        .where(*scope, waiting)
        .order_by(*in_order)
    )
    # (sort_key, patient_id, kind, until, zone): merged in queue order below
    passed_over: list[tuple[float, int, str, datetime | None, str]] = []
    for key, pid, available, blocked, holder, expires, reserved, until, tz in session.execute(
        others
    ):
        if holder is not None and expires is not None and as_utc(expires) > now:
            if holder != user_id:
                passed_over.append((key, pid, "with_agent", as_utc(expires), tz))
        elif reserved is not None and reserved != user_id and until and as_utc(until) > now:
            passed_over.append((key, pid, "callback_reserved", as_utc(until), tz))
        else:
            passed_over.append((key, pid, kind_of(blocked), as_utc(available), tz))
    callable_now = int(due_now)
    if live_checks > 0 and due_now:
        first_due = (
            select(*in_order, Pharmacy.timezone)
            .join(Pharmacy, Pharmacy.id == qe.pharmacy_id)
            .where(*scope, ~waiting)
            .order_by(*in_order)
            .limit(live_checks)
        )
        for key, pid, tz in session.execute(first_due).all():
            verdict = patient_verdict(session, pid, now, settings)
            if not verdict.callable:
                callable_now -= 1
                passed_over.append((key, pid, kind_of(verdict.codes[0]), verdict.next_open_at, tz))
    passed_over.sort(key=lambda m: (m[0], m[1]))
    groups: dict[str, list[tuple[datetime | None, str]]] = {}
    for _key, _pid, kind, until, tz in passed_over:
        groups.setdefault(kind, []).append((until, tz))
    return summarize_groups(groups, int(total), callable_now, now), int(claimable)


def summarize_groups(
    groups: dict[str, list[tuple[datetime | None, str]]],
    due: int,
    callable_now: int,
    now: datetime,
) -> DueBreakdown:
    """The breakdown of the due entries not callable now, grouped by why (`groups`: kind ->
    (when they open, their zone) in queue order): each group's size and earliest opening, and
    the next opening of any that will open by itself."""
    waits: list[WaitGroup] = []
    for kind in KINDS:
        members = groups.get(kind)
        if not members:
            continue
        timed = [(t, tz) for t, tz in members if t is not None]
        first = min(timed, key=lambda m: m[0]) if timed else (None, "UTC")
        waits.append(WaitGroup(kind, len(members), first[0], first[1]))
    opening = [
        (t, tz)
        for kind, members in groups.items()
        if kind not in ("record_blocked", "with_agent")
        for t, tz in members
        if t is not None
    ]
    nxt = min(opening, key=lambda m: m[0]) if opening else (None, "UTC")
    return DueBreakdown(due, callable_now, tuple(waits), nxt[0], nxt[1], now)


def queue_stats(
    session: Session, now: datetime, settings: QueueSettings | None = None
) -> QueueStats:
    def count(q: object) -> int:
        return int(session.scalar(q) or 0)  # type: ignore[call-overload]

    # Patients queued and claimable now come from the breakdown's read of every open entry: a
    # count of its own would read them all once more (migration 0022's partial waiting index
    # serves no count on `status = 'open'`; bench/queue_stats.py).
    due, claimable = _due_pass(session, now, None, None, settings, LIVE_CHECKS)
    held = and_(QueueEntry.holder_id.is_not(None), QueueEntry.lease_expires_at > now)
    open_tasks = count(select(func.count()).select_from(Task).where(Task.status == "open"))
    claimed = count(
        select(func.count())
        .select_from(Task)
        .join(QueueEntry, QueueEntry.patient_id == Task.patient_id)
        .where(Task.status == "open", held)
    )
    return QueueStats(
        pharmacies=count(select(func.count()).select_from(Pharmacy)),
        patients=count(select(func.count()).select_from(Patient)),
        tasks_open=open_tasks - claimed,
        tasks_claimed=claimed,
        tasks_done=count(select(func.count()).select_from(Task).where(Task.status != "open")),
        attempts=count(select(func.count()).select_from(Attempt)),
        patients_queued=due.patients_due,
        patients_claimable_now=claimable,
        due=due,
    )
