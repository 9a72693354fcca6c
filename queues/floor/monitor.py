"""The supervisor's floor view as data: queues, agents and today's outcomes for their pharmacies.

`FloorMonitor.refresh` returns frozen rows the monitor screen draws. Counting a million open
tasks takes longer than a person should wait every two seconds, so the work is split:
- every refresh: agents, held patients, patients waiting (and why), callbacks, and today's calls
  (read incrementally: only attempts newer than the last refresh) — each an index range scan;
- every `recount_every` (and on demand, after a control): the depth of each campaign — tasks now,
  later and held, oldest due — one grouped pass over the open tasks, shown with its time.
Counts per campaign are tasks (a campaign's depth is its tasks); per pharmacy they are patients
(one call works all of a patient's tasks).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from queues.reports.fetch import open_tasks
from queues.reports.figures import FigureTally
from queues.store.models import (
    AgentState,
    Attempt,
    Callback,
    Campaign,
    DispositionCode,
    FollowUpAction,
    Patient,
    Pharmacy,
    QueueEntry,
    Task,
    User,
    UserPharmacy,
)
from queues.views.floor import (
    CALLBACK_LIST_LIMIT,
    LONG_WRAP_UP_MINUTES,
    STUCK_LEASE_MINUTES,
    AgentRow,
    AlertLimits,
    CallbackRow,
    FloorAlerts,
    FloorSnapshot,
    OutcomeSummary,
    PharmacyRow,
    QueueRow,
)
from queues.views.outcome import LINE_FAILED
from queues.views.reasons import WAITING, reason_words

__all__ = [
    "CALLBACK_LIST_LIMIT",
    "LONG_WRAP_UP_MINUTES",
    "STUCK_LEASE_MINUTES",
    "WAITING",
    "AgentRow",
    "CallbackRow",
    "FloorMonitor",
    "FloorSnapshot",
    "OutcomeSummary",
    "PharmacyRow",
    "QueueRow",
    "floor_snapshot",
    "floor_zone",
    "reason_words",
]

RECOUNT_EVERY = timedelta(seconds=60)
OFFICE_KIND = "prescriber_office"  # queues.reports.build.OFFICE_KIND: counted apart
# The outbox's states (queues.outbox): delivered, or given up on purpose; 'sent' and 'failed'
# are what the column held before it.
DELIVERED = ("delivered", "sent", "discarded")
DEAD = ("dead", "failed")
# Attempts commit in id order but for the few in flight at once (one per console at most): each
# refresh re-reads this many ids below the highest seen, so a slow commit is not missed.
ATTEMPT_ID_WINDOW = 300
PAUSED = "campaign_paused"  # queues.building.build.CAMPAIGN_PAUSED (building pulls in every rule)
# Follow-up action kinds the floor counts (queues.outcomes.ACTION_KINDS).
REFILL_REQUEST = "refill_request"
MED_SYNC_ENROLLMENT = "med_sync_enrollment"
PHARMACIST_ESCALATION = "pharmacist_escalation"
TRANSFERRED = "transferred_pharmacist"  # a disposition that is an escalation by itself


def day_start(now: datetime, zone: str) -> datetime:
    local = now.astimezone(ZoneInfo(zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def floor_zone(session: Session, pharmacy_ids: Sequence[int]) -> str:
    """'Today' for the floor: the day of the supervisor's first pharmacy (by code)."""
    zone = session.scalar(
        select(Pharmacy.timezone)
        .where(Pharmacy.id.in_(pharmacy_ids))
        .order_by(Pharmacy.code)
        .limit(1)
    )
    return zone or "UTC"


def floor_snapshot(
    session: Session,
    pharmacy_ids: Sequence[int],
    now: datetime,
    zone: str | None = None,
    grace_minutes: int = 30,
) -> FloorSnapshot:
    """Everything the monitor shows, counted from scratch (a monitor's first refresh)."""
    return FloorMonitor(pharmacy_ids, grace_minutes).refresh(session, now, zone=zone)


@dataclass
class _Depth:
    counted_at: datetime
    queues: tuple[QueueRow, ...]
    patients: dict[int, int]  # open queue entries per pharmacy


@dataclass
class DayTally:
    """Today's attempts to the pharmacies' patients, read incrementally by attempt id.

    The figures (calls, patients called and reached, refill requests, enrollments, escalations)
    come from `queues.reports.figures.FigureTally`, the report's own tally, so that the Today tab
    and a report of today agree figure by figure: each pharmacy's day is its own local day, and
    a call to a prescriber's office is counted apart, as the report does."""

    start: datetime | None = None
    max_id: int = 0
    seen: set[int] = field(default_factory=set)
    by_disposition: Counter[str] = field(default_factory=Counter)
    by_hour: Counter[int] = field(default_factory=Counter)
    figures: FigureTally = field(default_factory=FigureTally)
    max_action_id: int = 0
    seen_actions: set[int] = field(default_factory=set)
    line_failures: int = 0
    last_failure: tuple[datetime, int | None] | None = None  # (when, SIP status)
    agent_calls: Counter[int] = field(default_factory=Counter)
    agent_reached: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    agent_handle: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    agent_wrap: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))

    def update(
        self,
        session: Session,
        pharmacy_ids: Sequence[int],
        start: datetime,
        zone: str,
        starts: dict[int, datetime] | None = None,
    ) -> None:
        """`start`: the earliest of the pharmacies' midnights; `starts`: each one's own."""
        if self.start != start:  # a new day (or the first refresh): count from midnight
            self.__init__(start=start)  # type: ignore[misc]
        tz = ZoneInfo(zone)
        starts = starts or {}
        # The patient's pharmacy by primary key per new attempt: a join lets the planner hash
        # every patient of the pharmacies, hundreds of times the work of a refresh.
        pharmacy = (
            select(Patient.pharmacy_id).where(Patient.id == Attempt.patient_id).scalar_subquery()
        )
        low = max(self.max_id - ATTEMPT_ID_WINDOW, 0)
        new = [
            row
            for row in session.execute(
                select(
                    Attempt.id,
                    Attempt.user_id,
                    Attempt.patient_id,
                    pharmacy,
                    Attempt.disposition,
                    DispositionCode.reached,
                    Attempt.started_at,
                    Attempt.ended_at,
                    Attempt.recorded_at,
                    Attempt.call_result,
                    Attempt.sip_status,
                    Attempt.task_ids,
                )
                .join(DispositionCode, DispositionCode.code == Attempt.disposition)
                .where(Attempt.started_at >= start, Attempt.id > low)
            )
            if row[0] not in self.seen
        ]
        office = _office_tasks(session, [r[11] for r in new])
        for (
            aid,
            uid,
            pid,
            pharmacy_id,
            code,
            reached,
            started,
            ended,
            recorded,
            result,
            sip_status,
            task_ids,
        ) in new:
            self.seen.add(aid)
            self.max_id = max(self.max_id, aid)
            if pharmacy_id not in pharmacy_ids or started < starts.get(pharmacy_id, start):
                continue
            self.by_disposition[code] += 1
            self.by_hour[started.astimezone(tz).hour] += 1
            if result == "failed" or code == LINE_FAILED:
                self.line_failures += 1
                if self.last_failure is None or started >= self.last_failure[0]:
                    self.last_failure = (started, sip_status)
            worked = open_tasks(task_ids)
            if not (worked and set(worked) <= office):  # a prescriber-office call is apart
                self.figures.call(aid, pid, code, bool(reached))
            self.agent_calls[uid] += 1
            self.agent_handle[uid].append((ended - started).total_seconds())
            if recorded is not None:
                self.agent_wrap[uid].append((recorded - ended).total_seconds())
            if reached:
                self.agent_reached[uid].add(pid)
        # Follow-up actions are appended with the attempt, so they are read the same way; the
        # tally counts one only with its call.
        low = max(self.max_action_id - ATTEMPT_ID_WINDOW, 0)
        for action_id, kind, attempt_id, patient_id in session.execute(
            select(
                FollowUpAction.id,
                FollowUpAction.kind,
                FollowUpAction.attempt_id,
                FollowUpAction.patient_id,
            ).where(
                FollowUpAction.created_at >= start,
                FollowUpAction.id > low,
                FollowUpAction.pharmacy_id.in_(pharmacy_ids),
            )
        ):
            if action_id in self.seen_actions:
                continue
            self.seen_actions.add(action_id)
            self.max_action_id = max(self.max_action_id, action_id)
            self.figures.action(action_id, attempt_id, kind, patient_id)


def _office_tasks(session: Session, task_lists: Sequence[Any]) -> set[int]:
    """Which of these tasks belong to a prescriber-office campaign (none, on most floors)."""
    ids = sorted({t for tasks in task_lists for t in open_tasks(tasks)})
    if not ids:
        return set()
    offices = list(session.scalars(select(Campaign.id).where(Campaign.kind == OFFICE_KIND)))
    if not offices:
        return set()
    found: set[int] = set()
    for i in range(0, len(ids), 500):
        found.update(
            session.scalars(
                select(Task.id).where(Task.id.in_(ids[i : i + 500]), Task.campaign_id.in_(offices))
            )
        )
    return found


class FloorMonitor:
    """One supervisor's floor view over time: keeps the campaign depths (recounted every
    `recount_every`) and today's tally (read incrementally) between refreshes."""

    def __init__(
        self,
        pharmacy_ids: Sequence[int],
        grace_minutes: int = 30,
        recount_every: timedelta | None = RECOUNT_EVERY,
        limits: AlertLimits | None = None,
    ) -> None:
        """`recount_every` None: the caller runs `recount` itself (the console does, in a worker
        of its own, so a slow recount never holds up the two-second refresh)."""
        self.pharmacy_ids = tuple(pharmacy_ids)
        self.grace_minutes = grace_minutes
        self.recount_every = recount_every
        self._depth: _Depth | None = None
        self._tally = DayTally()
        self._labels: dict[str, str] = {}
        self._zones: dict[int, str] | None = None
        self.limits = limits or AlertLimits()

    def recount_due(self, now: datetime) -> bool:
        if self._depth is None:
            return True
        return self.recount_every is not None and now - self._depth.counted_at >= self.recount_every

    def recount(self, session: Session, now: datetime) -> None:
        """Count every campaign's open tasks again (one grouped pass over the open tasks)."""
        ids = self.pharmacy_ids
        # One assignment: a refresh in another thread sees the old depth or the new one.
        self._depth = _Depth(now, queue_rows(session, ids, now), pharmacy_patients(session, ids))

    def refresh(
        self, session: Session, now: datetime, *, zone: str | None = None, recount: bool = False
    ) -> FloorSnapshot:
        ids = self.pharmacy_ids
        zone = zone or floor_zone(session, ids)
        if recount or self.recount_due(now):
            self.recount(session, now)
        depth = self._depth
        assert depth is not None
        if self._zones is None:
            self._zones = {
                pid: tz
                for pid, tz in session.execute(
                    select(Pharmacy.id, Pharmacy.timezone).where(Pharmacy.id.in_(ids))
                )
            }
        # Each pharmacy's today is its own local day, as in its report.
        starts = {pid: day_start(now, tz) for pid, tz in self._zones.items()}
        start = min(starts.values(), default=day_start(now, zone))
        self._tally.update(session, ids, start, zone, starts)
        if not self._labels:
            self._labels = {
                code: label
                for code, label in session.execute(
                    select(DispositionCode.code, DispositionCode.label)
                )
            }
        callbacks_due, callback_list = callback_rows(session, ids, now, self.grace_minutes)
        closed = closed_pharmacies(session, ids, now)
        agents = agent_rows(session, ids, now, self._tally)
        alerts = floor_alerts(
            session,
            ids,
            now,
            self.limits,
            agents,
            depth.queues,
            self._tally,
            now.astimezone(ZoneInfo(zone)).date(),
        )
        return FloorSnapshot(
            at=now,
            zone=zone,
            counted_at=depth.counted_at,
            pharmacies=tuple(
                _while_closed(r, closed.get(r.pharmacy_id, False))
                for r in pharmacy_rows(session, ids, now, depth.patients, callbacks_due)
            ),
            queues=tuple(_while_closed(r, closed.get(r.pharmacy_id, False)) for r in depth.queues),
            agents=agents,
            callbacks=callback_list,
            outcomes=outcome_summary(self._tally, self._labels, callbacks_due),
            alerts=alerts,
        )


def _entry_state(now: datetime) -> ColumnElement[str]:
    """held | now | the reason a later one waits (its blocked_reason, else 'waiting')."""
    return case(
        (and_(QueueEntry.holder_id.is_not(None), QueueEntry.lease_expires_at > now), "held"),
        (QueueEntry.available_at <= now, "now"),
        else_=func.coalesce(QueueEntry.blocked_reason, WAITING),
    )


def queue_rows(
    session: Session, pharmacy_ids: Sequence[int], now: datetime
) -> tuple[QueueRow, ...]:
    """Every campaign of these pharmacies (paused ones too, so they can be resumed) with its
    open tasks split by their patient's state: one grouped pass over the open tasks."""
    if not pharmacy_ids:
        return ()
    state = _entry_state(now).label("state")
    counts: dict[tuple[int, int], dict[str, int]] = defaultdict(dict)
    next_at: dict[tuple[int, int], datetime] = {}
    oldest_due: dict[tuple[int, int], date] = {}
    oldest_created: dict[tuple[int, int], datetime] = {}
    for pharmacy_id, campaign_id, st, n, first_available, due, created in session.execute(
        select(
            QueueEntry.pharmacy_id,
            Task.campaign_id,
            state,
            func.count(),
            func.min(QueueEntry.available_at),
            func.min(Task.due_on),
            func.min(Task.created_at),
        )
        .select_from(Task)
        .join(QueueEntry, QueueEntry.patient_id == Task.patient_id)
        .where(
            Task.status == "open",
            QueueEntry.status == "open",
            QueueEntry.pharmacy_id.in_(pharmacy_ids),
        )
        .group_by(QueueEntry.pharmacy_id, Task.campaign_id, state)
    ):
        key = (pharmacy_id, campaign_id)
        counts[key][st] = n
        if st not in ("now", "held") and first_available is not None:
            next_at[key] = min(next_at.get(key, first_available), first_available)
        if due is not None:
            oldest_due[key] = min(oldest_due.get(key, due), due)
        if created is not None:
            oldest_created[key] = min(oldest_created.get(key, created), created)

    pharmacies = {
        pid: code
        for pid, code in session.execute(
            select(Pharmacy.id, Pharmacy.code).where(Pharmacy.id.in_(pharmacy_ids))
        )
    }
    if not pharmacies:
        return ()
    campaigns = list(
        session.scalars(
            select(Campaign).where(
                or_(Campaign.pharmacy_id.is_(None), Campaign.pharmacy_id.in_(pharmacy_ids))
            )
        )
    )
    paused = _paused_tasks(session, [c.id for c in campaigns if not c.active], pharmacy_ids)
    first_pharmacy = min(pharmacies, key=lambda p: pharmacies[p])
    out = []
    for c in campaigns:
        # A campaign for one pharmacy has one row; a campaign for all has a row per pharmacy
        # with work in it (or waiting for a resume), else one row under the first pharmacy.
        where = (
            [c.pharmacy_id]
            if c.pharmacy_id is not None
            else sorted(
                {p for p, cid in counts if cid == c.id} | {p for p, cid in paused if cid == c.id}
            )
            or [first_pharmacy]
        )
        for pharmacy_id in where:
            key = (pharmacy_id, c.id)
            by_state = counts.get(key, {})
            later = {k: v for k, v in by_state.items() if k not in ("now", "held")}
            out.append(
                QueueRow(
                    pharmacy_id=pharmacy_id,
                    pharmacy=pharmacies[pharmacy_id],
                    campaign_id=c.id,
                    campaign=c.name,
                    active=c.active,
                    weight=c.weight,
                    open_tasks=sum(by_state.values()),
                    callable_now=by_state.get("now", 0),
                    callable_later=sum(later.values()),
                    next_at=next_at.get(key),
                    held=by_state.get("held", 0),
                    blocked=_merged(later),
                    oldest_due=oldest_due.get(key),
                    oldest_created=oldest_created.get(key),
                    paused_tasks=paused.get(key, 0),
                    shared=c.pharmacy_id is None,
                )
            )
    out.sort(key=lambda r: (r.pharmacy, not r.active, r.campaign))
    return tuple(out)


def _merged(counts: dict[str, int]) -> tuple[tuple[str, int], ...]:
    """Counts by reason code → by reason as a supervisor reads it, most first."""
    words: Counter[str] = Counter()
    for code, n in counts.items():
        words[reason_words(code)] += n
    return tuple(sorted(words.items(), key=lambda kv: (-kv[1], kv[0])))


def _paused_tasks(
    session: Session, campaign_ids: list[int], pharmacy_ids: Sequence[int]
) -> dict[tuple[int, int], int]:
    if not campaign_ids:
        return {}
    return {
        (pharmacy_id, campaign_id): n
        for pharmacy_id, campaign_id, n in session.execute(
            select(Patient.pharmacy_id, Task.campaign_id, func.count())
            .join(Patient, Patient.id == Task.patient_id)
            .where(
                Task.campaign_id.in_(campaign_ids),
                Task.status == "closed",
                Task.closed_reason == PAUSED,
                Patient.pharmacy_id.in_(pharmacy_ids),
            )
            .group_by(Patient.pharmacy_id, Task.campaign_id)
        )
    }


def pharmacy_patients(session: Session, pharmacy_ids: Sequence[int]) -> dict[int, int]:
    """Patients with open work per pharmacy (part of the recount)."""
    if not pharmacy_ids:
        return {}
    return {
        pid: n
        for pid, n in session.execute(
            select(QueueEntry.pharmacy_id, func.count())
            .where(QueueEntry.status == "open", QueueEntry.pharmacy_id.in_(pharmacy_ids))
            .group_by(QueueEntry.pharmacy_id)
        )
    }


def pharmacy_rows(
    session: Session,
    pharmacy_ids: Sequence[int],
    now: datetime,
    patients: dict[int, int],
    callbacks: dict[int, tuple[int, int]],
) -> tuple[PharmacyRow, ...]:
    """Held and waiting patients per pharmacy, fresh: only the entries not callable now are
    read — those nobody holds as an index range on available_at (ix_queue_entries_waiting, which
    leaves held rows out), the held ones (one per agent) through ix_queue_entries_holder."""
    if not pharmacy_ids:
        return ()
    state = _entry_state(now).label("state")
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    next_at: dict[int, datetime] = {}
    not_callable = (
        QueueEntry.status == "open",
        QueueEntry.available_at > now,
        QueueEntry.pharmacy_id.in_(pharmacy_ids),
    )
    # The two halves of the open rows (models.NOT_HELD and its complement), each row read once.
    # Nobody holds a waiting row, so its state is its reason (on PostgreSQL an index-only scan:
    # the index includes blocked_reason).
    waiting = func.coalesce(QueueEntry.blocked_reason, WAITING).label("state")
    for st_of, holder in (
        (waiting, QueueEntry.holder_id.is_(None)),
        (state, QueueEntry.holder_id.is_not(None)),
    ):
        for pharmacy_id, st, n, first in session.execute(
            select(QueueEntry.pharmacy_id, st_of, func.count(), func.min(QueueEntry.available_at))
            .where(*not_callable, holder)
            .group_by(QueueEntry.pharmacy_id, st_of)
        ):
            counts[pharmacy_id][st] += n
            if st != "held":
                next_at[pharmacy_id] = min(next_at.get(pharmacy_id, first), first)
    out = []
    for pid, code, name in session.execute(
        select(Pharmacy.id, Pharmacy.code, Pharmacy.name)
        .where(Pharmacy.id.in_(pharmacy_ids))
        .order_by(Pharmacy.code)
    ):
        by_state = counts.get(pid, {})
        later = {k: v for k, v in by_state.items() if k != "held"}
        total = patients.get(pid, 0)
        out.append(
            PharmacyRow(
                pharmacy_id=pid,
                code=code,
                name=name,
                patients=total,
                # The total is from the last recount: never show fewer than zero callable.
                callable_now=max(0, total - sum(by_state.values())),
                callable_later=sum(later.values()),
                next_at=next_at.get(pid),
                held=by_state.get("held", 0),
                blocked=_merged(later),
                callbacks_due=callbacks.get(pid, (0, 0))[0],
                callbacks_overdue=callbacks.get(pid, (0, 0))[1],
            )
        )
    return tuple(out)


def callback_rows(
    session: Session, pharmacy_ids: Sequence[int], now: datetime, grace_minutes: int
) -> tuple[dict[int, tuple[int, int]], tuple[CallbackRow, ...]]:
    """Due and overdue callbacks per pharmacy, and the pending ones soonest first (to reassign).

    Due: its time has come. Overdue: still pending past the grace period a "mine" callback waits
    for its owner. One read of the pending callbacks (a few hundred on a busy floor)."""
    if not pharmacy_ids:
        return {}, ()
    overdue_before = now - timedelta(minutes=grace_minutes)
    due: dict[int, tuple[int, int]] = {}
    listed: list[CallbackRow] = []
    for cid, pid, code, patient_id, due_at, owner_id, owner in session.execute(
        select(
            Callback.id,
            Pharmacy.id,
            Pharmacy.code,
            Callback.patient_id,
            Callback.due_at,
            Callback.owner_id,
            User.display_name,
        )
        .join(Patient, Patient.id == Callback.patient_id)
        .join(Pharmacy, Pharmacy.id == Patient.pharmacy_id)
        .outerjoin(User, User.id == Callback.owner_id)
        .where(Callback.status == "pending", Patient.pharmacy_id.in_(pharmacy_ids))
        .order_by(Callback.due_at, Callback.id)
    ):
        d, o = due.get(pid, (0, 0))
        due[pid] = (d + (due_at <= now), o + (due_at < overdue_before))
        if len(listed) < CALLBACK_LIST_LIMIT:
            listed.append(
                CallbackRow(cid, code, patient_id, due_at, owner_id, owner, due_at < overdue_before)
            )
    return due, tuple(listed)


def agent_rows(
    session: Session, pharmacy_ids: Sequence[int], now: datetime, tally: DayTally
) -> tuple[AgentRow, ...]:
    """The agents who work for any of these pharmacies; today's figures count their calls to
    these pharmacies' patients."""
    if not pharmacy_ids:
        return ()
    agents = session.execute(
        select(
            User.id,
            User.display_name,
            func.coalesce(AgentState.state, literal("offline")),
            AgentState.pause_code,
            AgentState.since,
            AgentState.logout_requested_at,
        )
        .outerjoin(AgentState, AgentState.user_id == User.id)
        .where(
            User.role == "agent",
            User.active.is_(True),
            User.id.in_(
                select(UserPharmacy.user_id).where(UserPharmacy.pharmacy_id.in_(pharmacy_ids))
            ),
        )
        .order_by(User.display_name, User.id)
    ).all()
    ids = [a[0] for a in agents]
    holding: dict[int, tuple[datetime, int]] = {}
    if ids:
        for uid, at, patient_id in session.execute(
            select(QueueEntry.holder_id, QueueEntry.claimed_at, QueueEntry.patient_id)
            .where(
                QueueEntry.holder_id.in_(ids),
                QueueEntry.lease_expires_at > now,
                QueueEntry.status == "open",
            )
            .order_by(QueueEntry.claimed_at)
        ):
            if uid is not None and at is not None:  # the latest claim wins (one, normally)
                holding[uid] = (at, patient_id)
    out = []
    for user_id, name, state, pause_code, state_since, logout_at in agents:
        held_at, held_patient = holding.get(user_id, (None, None))
        handle = tally.agent_handle.get(user_id)
        wrap = tally.agent_wrap.get(user_id)
        out.append(
            AgentRow(
                user_id=user_id,
                name=name,
                state=state,
                pause_code=pause_code,
                since=state_since,
                calls_today=tally.agent_calls.get(user_id, 0),
                reached_today=len(tally.agent_reached.get(user_id, ())),
                avg_handle_s=sum(handle) / len(handle) if handle else None,
                avg_wrap_up_s=sum(wrap) / len(wrap) if wrap else None,
                holding_since=held_at,
                holding_patient_id=held_patient,
                logout_requested=logout_at is not None and state != "offline",
            )
        )
    return tuple(out)


def outcome_summary(
    tally: DayTally, labels: dict[str, str], callbacks: dict[int, tuple[int, int]]
) -> OutcomeSummary:
    """Today's calls and the follow-ups they produced, from the tally (the report's figures)."""
    by_disposition = sorted(
        ((code, labels.get(code, code), n) for code, n in tally.by_disposition.items()),
        key=lambda r: (-r[2], r[0]),
    )
    f = tally.figures.figures()
    return OutcomeSummary(
        by_disposition=tuple(by_disposition),
        by_hour=tuple(sorted(tally.by_hour.items())),
        attempts=f.calls,
        patients_called=f.patients_called,
        patients_reached=f.patients_reached,
        refill_requests=f.refill_requests,
        med_sync_enrollments=f.med_sync_enrollments,
        escalations=f.pharmacist_escalations,
        callbacks_due=sum(d for d, _ in callbacks.values()),
        callbacks_overdue=sum(o for _, o in callbacks.values()),
    )


def floor_alerts(
    session: Session,
    pharmacy_ids: Sequence[int],
    now: datetime,
    limits: AlertLimits,
    agents: Sequence[AgentRow],
    queues: Sequence[QueueRow],
    tally: DayTally,
    today: date,
) -> FloorAlerts:
    """What the supervisor must act on: agents long in wrap-up or on pause, campaigns whose
    oldest due patient is past its target, today's line failures, follow-ups not delivered."""

    def minutes(a: AgentRow) -> int:
        return int((now - a.since).total_seconds() // 60) if a.since else 0

    wrap = tuple(
        (a.user_id, a.name, minutes(a))
        for a in agents
        if a.state == "wrap_up" and a.since and minutes(a) >= limits.wrap_up_minutes
    )
    pause = tuple(
        (a.user_id, a.name, minutes(a))
        for a in agents
        if a.state == "paused" and a.since and minutes(a) >= limits.pause_minutes
    )
    overdue = tuple(
        (q.pharmacy, q.campaign, (today - q.oldest_due).days)
        for q in queues
        if q.active
        and q.oldest_due is not None
        and (today - q.oldest_due).days > limits.oldest_due_days
    )
    undelivered = dead = 0
    if pharmacy_ids:
        late = now - timedelta(minutes=limits.undelivered_minutes)
        for status, n in session.execute(
            select(FollowUpAction.status, func.count())
            .where(
                FollowUpAction.status.not_in(DELIVERED),
                FollowUpAction.created_at <= late,
                FollowUpAction.pharmacy_id.in_(pharmacy_ids),
            )
            .group_by(FollowUpAction.status)
        ):
            undelivered += n
            if status in DEAD:
                dead += n
    return FloorAlerts(
        long_wrap_up=wrap,
        long_pause=pause,
        overdue_campaigns=overdue,
        line_failures=tally.line_failures,
        last_sip_status=tally.last_failure[1] if tally.last_failure else None,
        line_failure_limit=limits.line_failures,
        undelivered=undelivered,
        dead=dead,
    )


CLOSED = "pharmacy_hours"


def closed_pharmacies(
    session: Session, pharmacy_ids: Sequence[int], now: datetime
) -> dict[int, datetime | None]:
    """Pharmacies outside their own hours now, with when they open: none of their patients is
    callable until then (the hours are the pharmacy's, in its zone, whatever the patient's)."""
    from queues.compliance.windows import Window, next_open

    out: dict[int, datetime | None] = {}
    for pid, code, tz, opens, closes in session.execute(
        select(
            Pharmacy.id, Pharmacy.code, Pharmacy.timezone, Pharmacy.opens_at, Pharmacy.closes_at
        ).where(Pharmacy.id.in_(pharmacy_ids))
    ):
        hours = Window(CLOSED, tz, opens, None if closes == time(0) else closes, code)
        if not hours.is_open(now):
            out[pid] = next_open([hours], now)
    return out


R = TypeVar("R", QueueRow, PharmacyRow)


def _while_closed(row: R, opens_at: datetime | Literal[False] | None) -> R:
    """A closed pharmacy's callable-now work shown as waiting for the pharmacy to open."""
    if opens_at is False or row.callable_now == 0:
        return row
    blocked = dict(row.blocked)
    label = "pharmacy closed"
    blocked[label] = blocked.get(label, 0) + row.callable_now
    next_at = opens_at if row.next_at is None or opens_at is None else min(row.next_at, opens_at)
    return replace(
        row,
        callable_now=0,
        callable_later=row.callable_later + row.callable_now,
        next_at=next_at,
        blocked=tuple(sorted(blocked.items(), key=lambda kv: (-kv[1], kv[0]))),
    )
