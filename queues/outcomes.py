"""Recording a call's outcome: the attempt, its disposition's effect and the lease release, in one
transaction. A retried save (same attempt uid) is stored once.

A save whose claim is gone (the lease ran out and another agent took the patient, or a supervisor
released them) is stored late: the attempt is the call it was — it counts against the caps and in
the reports, its follow-up actions go out, an opt-out, a death or a wrong number is honored — and
it is marked `late`. The queue entry and the open tasks are left to whoever holds the patient now;
when nobody does, the disposition's effect is applied to them as for a save on time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from queues.audit import record
from queues.building.priority import CALLBACK_BONUS
from queues.claims.claiming import lock_for_outcome
from queues.compliance.callbacks import check_callback_time
from queues.errors import InvalidOutcome, LeaseLost
from queues.settings import QueueSettings
from queues.store.models import (
    Attempt,
    Callback,
    Campaign,
    DispositionCode,
    FollowUpAction,
    Patient,
    Phone,
    QueueEntry,
    Task,
)
from queues.timeutil import as_utc
from queues.views.outcome import (
    ACTION_KINDS,
    CALL_RESULTS,
    LINE_FAILED,
    NOTES_MAX,
    ActionRequest,
    DispositionOption,
    Outcome,
    Recorded,
)

__all__ = [
    "ACTION_KINDS",
    "CALL_RESULTS",
    "LINE_FAILED",
    "NOTES_MAX",
    "ActionRequest",
    "DispositionOption",
    "Outcome",
    "Recorded",
    "disposition_options",
    "record_outcome",
    "stored",
    "validate",
]


def stored(session: Session, uid: str) -> bool:
    """Whether the attempt with this uid is in the database (a console killed between the commit
    and removing its draft finds its draft answered)."""
    return session.scalar(select(Attempt.id).where(Attempt.uid == uid)) is not None


def disposition_options(session: Session) -> tuple[DispositionOption, ...]:
    return tuple(
        DispositionOption(d.code, d.label, d.effect, d.reached, d.requires_callback)
        for d in session.scalars(select(DispositionCode).order_by(DispositionCode.sort_order))
    )


def validate(outcome: Outcome, code: DispositionCode | None, now: datetime) -> None:
    """Every problem named by field, before anything is written."""
    if not outcome.disposition:
        raise InvalidOutcome("disposition", "choose how the call ended")
    if code is None:
        raise InvalidOutcome("disposition", f"{outcome.disposition!r} is not a disposition code")
    if code.requires_callback:
        if outcome.callback_at is None:
            raise InvalidOutcome("callback_at", f"'{code.label}' needs a callback date and time")
        if outcome.callback_at <= now:
            raise InvalidOutcome("callback_at", "the callback time must be in the future")
    if len(outcome.notes) > NOTES_MAX:
        raise InvalidOutcome("notes", f"keep notes under {NOTES_MAX} characters")
    if outcome.ended_at < outcome.started_at:
        raise InvalidOutcome("ended_at", "the call cannot end before it started")
    for action in outcome.actions:
        if action.kind not in ACTION_KINDS:
            raise InvalidOutcome("actions", f"{action.kind!r} is not a follow-up action")


def record_outcome(
    session: Session, outcome: Outcome, now: datetime, settings: QueueSettings | None = None
) -> Recorded:
    """Store the attempt and apply its disposition, in the caller's transaction."""
    settings = settings or QueueSettings()
    previous = session.scalar(select(Attempt).where(Attempt.uid == outcome.uid))
    if previous is not None:  # the first save went through; the console retried after a drop
        return Recorded(previous.id, False, None, duplicate=True)
    code = session.get(DispositionCode, outcome.disposition) if outcome.disposition else None
    validate(outcome, code, now)
    assert code is not None
    if code.requires_callback and outcome.callback_at is not None:
        # Inside the patient's calling window and not on a day they may not be called.
        check_callback_time(session, outcome.patient_id, outcome.callback_at, settings)
    entry, late = _entry_for(session, outcome)
    if late and entry is not None and entry.holder_id is not None:
        return _record_beside_holder(session, outcome, code, now)
    tasks = list(
        session.scalars(
            select(Task).where(Task.patient_id == outcome.patient_id, Task.status == "open")
        )
    )
    attempt = _store_attempt(session, outcome, code, [t.id for t in tasks], now, late)
    if entry is None:  # no queue entry at all (the patient's work was cleared): the call stands
        _record_audit(session, outcome, attempt, code, late)
        return Recorded(attempt.id, True, None, late=late)
    # This call answers any callback that was due (a line failure reached nobody: it stays due).
    if code.effect != LINE_FAILED:
        session.execute(
            update(Callback)
            .where(
                Callback.patient_id == outcome.patient_id,
                Callback.status == "pending",
                Callback.due_at <= now,
            )
            .values(status="done")
        )
    closed, available = _apply_effect(session, outcome, code, entry, tasks, attempt, now, settings)
    entry.holder_id = None
    entry.lease_token = None
    entry.lease_expires_at = None
    # A patient left open keeps `claimed_at`, so they wait for their retry or callback time out
    # of the claimable index (queues.claims.claiming's wake step clears it when that time comes).
    if closed:
        entry.claimed_at = None
    elif entry.claimed_at is None:  # stored late on a released patient: held out the same way
        entry.claimed_at = now
    if code.effect not in ("callback", LINE_FAILED):
        entry.reserved_for_id = None
        entry.reserved_until = None
    if closed:
        entry.status = "done"
    else:
        entry.available_at = available
    _record_audit(session, outcome, attempt, code, late)
    return Recorded(attempt.id, closed, None if closed else available, late=late)


def _entry_for(session: Session, outcome: Outcome) -> tuple[QueueEntry | None, bool]:
    """The patient's queue entry, locked, and whether this save is late (its claim is gone)."""
    try:
        entry = lock_for_outcome(session, outcome.patient_id, outcome.lease_token)
    except LeaseLost:
        query = select(QueueEntry).where(QueueEntry.patient_id == outcome.patient_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        return session.scalar(query), True
    if entry.holder_id != outcome.user_id:
        return entry, True
    return entry, False


def _store_attempt(
    session: Session,
    outcome: Outcome,
    code: DispositionCode,
    task_ids: list[int],
    now: datetime,
    late: bool,
) -> Attempt:
    """The attempt row and its follow-up actions (flushed: the attempt has its id)."""
    attempt = Attempt(
        uid=outcome.uid,
        patient_id=outcome.patient_id,
        user_id=outcome.user_id,
        phone_number=outcome.phone_number,
        dial_mode=outcome.dial_mode,
        call_result=outcome.call_result,
        sip_status=outcome.sip_status,
        started_at=outcome.started_at,
        connected_at=outcome.connected_at,
        ended_at=outcome.ended_at,
        disposition=code.code,
        notes=outcome.notes.strip(),
        script_id=outcome.script_id,
        answers=outcome.answers,
        task_ids={"open": task_ids},
        recorded_at=now,
        late=late,
    )
    session.add(attempt)
    session.flush()
    pharmacy_id = session.scalar(
        select(Patient.pharmacy_id).where(Patient.id == outcome.patient_id)
    )
    assert pharmacy_id is not None
    for n, action in enumerate(outcome.actions):
        session.add(
            FollowUpAction(
                idempotency_key=f"{outcome.uid}:{n}",
                attempt_id=attempt.id,
                patient_id=outcome.patient_id,
                pharmacy_id=pharmacy_id,
                kind=action.kind,
                prescription_id=action.prescription_id,
                detail=action.detail,
                created_at=now,
            )
        )
    return attempt


def _record_beside_holder(
    session: Session, outcome: Outcome, code: DispositionCode, now: datetime
) -> Recorded:
    """A late save while another agent holds the patient: the call is stored (it counts against
    the caps and in the reports, its actions go out) and what protects the patient is honored at
    once — an opt-out, a death, a wrong number, a callback they asked for — but the queue entry
    and the open tasks are the holder's: their own wrap-up decides them."""
    open_ids = list(
        session.scalars(
            select(Task.id).where(Task.patient_id == outcome.patient_id, Task.status == "open")
        )
    )
    attempt = _store_attempt(session, outcome, code, open_ids, now, late=True)
    if code.effect == "suppress_patient":
        patient = session.get_one(Patient, outcome.patient_id)
        if code.code == "deceased":
            patient.deceased = True
        else:  # an opt-out is honored at once (47 CFR 64.1200(a)(9)(iv)); the dial check sees it
            patient.do_not_call = True
    elif code.effect == "suppress_number" and outcome.phone_number:
        session.execute(
            update(Phone)
            .where(Phone.patient_id == outcome.patient_id, Phone.number == outcome.phone_number)
            .values(wrong_number=True)
        )
    elif code.effect == "callback" and outcome.callback_at is not None:
        session.add(
            Callback(
                patient_id=outcome.patient_id,
                attempt_id=attempt.id,
                due_at=outcome.callback_at,
                owner_id=outcome.user_id if outcome.callback_mine else None,
            )
        )
    _record_audit(session, outcome, attempt, code, True)
    return Recorded(attempt.id, False, None, late=True)


def _record_audit(
    session: Session, outcome: Outcome, attempt: Attempt, code: DispositionCode, late: bool
) -> None:
    detail: dict[str, object] = {"attempt_id": attempt.id, "disposition": code.code}
    if late:
        detail["late"] = True
    record(
        session,
        "disposition",
        user_id=outcome.user_id,
        patient_id=outcome.patient_id,
        detail=detail,
    )


def _apply_effect(
    session: Session,
    outcome: Outcome,
    code: DispositionCode,
    entry: QueueEntry,
    tasks: list[Task],
    attempt: Attempt,
    now: datetime,
    settings: QueueSettings,
) -> tuple[bool, datetime]:
    """Returns (all work closed, when the patient may be offered again)."""

    def close_all(reason: str) -> tuple[bool, datetime]:
        for task in tasks:
            task.status = "done" if code.reached else "closed"
            task.closed_at = now
            task.closed_reason = reason
        return True, now

    if code.effect == LINE_FAILED:
        # Nothing reached the patient: their tasks and attempt count stay as they were, and they
        # come back after a short wait (the trunk may be back by then).
        return False, now + timedelta(minutes=code.retry_after_minutes or 5)
    if code.effect == "close":
        return close_all(code.code)
    if code.effect == "suppress_patient":
        patient = session.get_one(Patient, outcome.patient_id)
        if code.code == "deceased":
            patient.deceased = True
        else:  # an opt-out is honored at once (47 CFR 64.1200(a)(9)(iv))
            patient.do_not_call = True
        return close_all(code.code)
    if code.effect == "callback":
        assert outcome.callback_at is not None
        if outcome.callback_mine:
            entry.reserved_for_id = outcome.user_id
            entry.reserved_until = outcome.callback_at + timedelta(
                minutes=settings.callback_grace_minutes
            )
        entry.sort_key -= CALLBACK_BONUS  # at its time, ahead of other work
        session.add(
            Callback(
                patient_id=outcome.patient_id,
                attempt_id=attempt.id,
                due_at=outcome.callback_at,
                owner_id=outcome.user_id if outcome.callback_mine else None,
            )
        )
        return False, outcome.callback_at
    if code.effect == "suppress_number" and outcome.phone_number:
        session.execute(
            update(Phone)
            .where(Phone.patient_id == outcome.patient_id, Phone.number == outcome.phone_number)
            .values(wrong_number=True)
        )
        usable = session.scalar(
            select(func.count())
            .select_from(Phone)
            .where(
                Phone.patient_id == outcome.patient_id,
                Phone.wrong_number.is_(False),
                Phone.do_not_call.is_(False),
            )
        )
        if not usable:
            return close_all("no_valid_number")
        return False, now
    # retry: another attempt later, unless the attempts are spent (the attempt above is flushed,
    # so it counts). Each task has its campaign's attempt limit (never above the site's
    # max_attempts), counted from when the task opened: a spent task closes with a final reason,
    # shown in the history, while the patient's other programs go on; all spent closes the work.
    attempts = session.execute(
        select(Attempt.started_at, Attempt.disposition).where(
            Attempt.patient_id == outcome.patient_id,
            Attempt.started_at >= _oldest_open_task(tasks, now),
            Attempt.disposition != LINE_FAILED,  # the trunk's failures spend no attempts
        )
    ).all()
    dispositions = [d for _, d in attempts]
    limits = dict(
        session.execute(
            select(Campaign.id, Campaign.attempt_limit).where(
                Campaign.id.in_({t.campaign_id for t in tasks})
            )
        ).all()
    )
    spent = [
        t
        for t in tasks
        if sum(1 for at, _ in attempts if as_utc(at) >= as_utc(t.created_at))
        >= min(limits.get(t.campaign_id, settings.max_attempts), settings.max_attempts)
    ]
    # With no open task left to count against, the site's max_attempts decides.
    all_spent = len(spent) == len(tasks) if tasks else len(dispositions) >= settings.max_attempts
    if all_spent:
        return close_all("attempts_exhausted")
    for task in spent:
        task.status = "closed"
        task.closed_at = now
        task.closed_reason = "attempts_exhausted"
    if code.code == "no_answer":
        if dispositions.count("no_answer") >= settings.no_answer_max_attempts:
            return close_all("no_answer_exhausted")
        return False, now + timedelta(hours=settings.no_answer_retry_hours)
    if code.code == "busy":
        return False, now + timedelta(minutes=settings.busy_retry_minutes)
    # When the patient may be called again is then up to the calling rules at the next claim.
    return False, now + timedelta(minutes=code.retry_after_minutes or 60)


def _oldest_open_task(tasks: list[Task], now: datetime) -> datetime:
    return min((t.created_at for t in tasks), default=now)
