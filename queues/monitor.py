"""The supervisor's floor view as data: queues, agents and today's outcomes for their pharmacies.

One call, a handful of grouped queries; each returns frozen rows the monitor screen draws.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from queues.models import (
    AgentState,
    Attempt,
    Callback,
    Campaign,
    DispositionCode,
    Pharmacy,
    QueueEntry,
    Task,
    User,
    UserPharmacy,
)
from queues.sqlfuncs import seconds_between

STUCK_LEASE_MINUTES = 20
LONG_WRAP_UP_MINUTES = 3


@dataclass(frozen=True)
class QueueRow:
    pharmacy: str
    campaign: str
    campaign_id: int
    active: bool
    weight: float
    open_tasks: int
    callable_now: int
    callable_later: int
    next_at: datetime | None
    claimed: int
    blocked: tuple[tuple[str, int], ...]  # (reason, patients)
    oldest_task_at: datetime | None


@dataclass(frozen=True)
class AgentRow:
    user_id: int
    name: str
    state: str
    pause_code: str | None
    since: datetime | None
    calls_today: int
    reached_today: int
    avg_handle_s: float | None
    avg_wrap_up_s: float | None
    holding_since: datetime | None

    def stuck(self, now: datetime) -> bool:
        """A lease held far too long, or a wrap-up that drags on: the row stands out."""
        if self.holding_since and now - self.holding_since > timedelta(minutes=STUCK_LEASE_MINUTES):
            return True
        return bool(
            self.state == "wrap_up"
            and self.since
            and now - self.since > timedelta(minutes=LONG_WRAP_UP_MINUTES)
        )


@dataclass(frozen=True)
class OutcomeSummary:
    by_disposition: tuple[tuple[str, int], ...]
    by_hour: tuple[tuple[int, int], ...]  # local hour, attempts
    attempts: int
    reached: int
    refill_requests: int
    med_sync_enrollments: int
    escalations: int
    callbacks_due: int
    callbacks_overdue: int

    @property
    def reach_rate(self) -> float:
        return self.reached / self.attempts if self.attempts else 0.0


@dataclass(frozen=True)
class FloorSnapshot:
    at: datetime
    queues: tuple[QueueRow, ...]
    agents: tuple[AgentRow, ...]
    outcomes: OutcomeSummary


def day_start(now: datetime, zone: str) -> datetime:
    local = now.astimezone(ZoneInfo(zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def floor_snapshot(
    session: Session,
    pharmacy_ids: tuple[int, ...],
    now: datetime,
    zone: str,
    grace_minutes: int = 30,
) -> FloorSnapshot:
    return FloorSnapshot(
        at=now,
        queues=queue_rows(session, pharmacy_ids, now),
        agents=agent_rows(session, pharmacy_ids, now, day_start(now, zone)),
        outcomes=outcome_summary(session, pharmacy_ids, now, zone, grace_minutes),
    )


def queue_rows(
    session: Session, pharmacy_ids: tuple[int, ...], now: datetime
) -> tuple[QueueRow, ...]:
    held = and_(QueueEntry.holder_id.is_not(None), QueueEntry.lease_expires_at > now)
    free = and_(QueueEntry.status == "open", ~held)
    rows = session.execute(
        select(
            Pharmacy.code,
            Campaign.name,
            Campaign.id,
            Campaign.active,
            Campaign.weight,
            func.count(Task.id),
            func.count(case((and_(free, QueueEntry.available_at <= now), Task.id))),
            func.count(case((and_(free, QueueEntry.available_at > now), Task.id))),
            func.min(case((and_(free, QueueEntry.available_at > now), QueueEntry.available_at))),
            func.count(case((held, Task.id))),
            func.min(Task.created_at),
        )
        .select_from(Task)
        .join(Campaign, Campaign.id == Task.campaign_id)
        .join(QueueEntry, QueueEntry.patient_id == Task.patient_id)
        .join(Pharmacy, Pharmacy.id == QueueEntry.pharmacy_id)
        .where(Task.status == "open", QueueEntry.pharmacy_id.in_(pharmacy_ids))
        .group_by(Pharmacy.code, Campaign.name, Campaign.id, Campaign.active, Campaign.weight)
        .order_by(Pharmacy.code, Campaign.name)
    ).all()
    blocked: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for campaign_id, reason, count in session.execute(
        select(
            Task.campaign_id, QueueEntry.blocked_reason, func.count(func.distinct(Task.patient_id))
        )
        .join(QueueEntry, QueueEntry.patient_id == Task.patient_id)
        .where(
            Task.status == "open",
            QueueEntry.pharmacy_id.in_(pharmacy_ids),
            QueueEntry.blocked_reason.is_not(None),
            QueueEntry.available_at > now,
        )
        .group_by(Task.campaign_id, QueueEntry.blocked_reason)
    ):
        blocked[campaign_id].append((str(reason), count))
    return tuple(
        QueueRow(
            code,
            name,
            cid,
            active,
            weight,
            total,
            now_n,
            later_n,
            next_at,
            claimed,
            tuple(sorted(blocked.get(cid, []))),
            oldest,
        )
        for code, name, cid, active, weight, total, now_n, later_n, next_at, claimed, oldest in rows
    )


def agent_rows(
    session: Session, pharmacy_ids: tuple[int, ...], now: datetime, since: datetime
) -> tuple[AgentRow, ...]:
    agents = select(UserPharmacy.user_id).where(UserPharmacy.pharmacy_id.in_(pharmacy_ids))
    stats = {
        uid: (calls, reached, handle, wrap)
        for uid, calls, reached, handle, wrap in session.execute(
            select(
                Attempt.user_id,
                func.count(Attempt.id),
                func.count(case((DispositionCode.reached.is_(True), Attempt.id))),
                func.avg(seconds_between(Attempt.started_at, Attempt.ended_at)),
                func.avg(seconds_between(Attempt.ended_at, Attempt.recorded_at)),
            )
            .join(DispositionCode, DispositionCode.code == Attempt.disposition)
            .where(Attempt.started_at >= since, Attempt.user_id.in_(agents))
            .group_by(Attempt.user_id)
        )
    }
    holding = {
        uid: at
        for uid, at in session.execute(
            select(QueueEntry.holder_id, func.min(QueueEntry.claimed_at))
            .where(QueueEntry.holder_id.is_not(None), QueueEntry.lease_expires_at > now)
            .group_by(QueueEntry.holder_id)
        )
    }
    out = []
    for user, state in session.execute(
        select(User, AgentState)
        .outerjoin(AgentState, AgentState.user_id == User.id)
        .where(User.role == "agent", User.id.in_(agents), User.active.is_(True))
        .order_by(User.display_name)
    ).tuples():
        calls, reached, handle, wrap = stats.get(user.id, (0, 0, None, None))
        out.append(
            AgentRow(
                user.id,
                user.display_name,
                state.state if state else "offline",
                state.pause_code if state else None,
                state.since if state else None,
                calls,
                reached,
                float(handle) if handle is not None else None,
                float(wrap) if wrap is not None else None,
                holding.get(user.id),
            )
        )
    return tuple(out)


def outcome_summary(
    session: Session, pharmacy_ids: tuple[int, ...], now: datetime, zone: str, grace_minutes: int
) -> OutcomeSummary:
    from queues.models import Patient

    start = day_start(now, zone)
    mine = select(Patient.id).where(Patient.pharmacy_id.in_(pharmacy_ids))
    rows = session.execute(
        select(Attempt.started_at, Attempt.disposition, DispositionCode.reached, Attempt.answers)
        .join(DispositionCode, DispositionCode.code == Attempt.disposition)
        .where(Attempt.started_at >= start, Attempt.patient_id.in_(mine))
    ).all()
    by_disposition: dict[str, int] = defaultdict(int)
    by_hour: dict[int, int] = defaultdict(int)
    actions: dict[str, int] = defaultdict(int)
    tz = ZoneInfo(zone)
    reached = 0
    for started, disposition, was_reached, answers in rows:
        by_disposition[disposition] += 1
        by_hour[started.astimezone(tz).hour] += 1
        reached += bool(was_reached)
        for action in (answers or {}).get("actions", []):
            if isinstance(action, dict):
                actions[str(action.get("kind"))] += 1
        if disposition == "transferred_pharmacist":
            actions["escalate_pharmacist"] += 1
    grace = timedelta(minutes=grace_minutes)
    due, overdue = session.execute(
        select(
            func.count(case((Callback.due_at <= now, Callback.id))),
            func.count(case((Callback.due_at < now - grace, Callback.id))),
        ).where(Callback.status == "pending", Callback.patient_id.in_(mine))
    ).one()
    return OutcomeSummary(
        by_disposition=tuple(sorted(by_disposition.items(), key=lambda kv: -kv[1])),
        by_hour=tuple(sorted(by_hour.items())),
        attempts=len(rows),
        reached=reached,
        refill_requests=actions["request_refill"],
        med_sync_enrollments=actions["enroll_med_sync"],
        escalations=actions["escalate_pharmacist"],
        callbacks_due=int(due or 0),
        callbacks_overdue=int(overdue or 0),
    )
