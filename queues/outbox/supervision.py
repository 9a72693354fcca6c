"""What a supervisor sees of the outbox and may do with it: counts per pharmacy, the actions
that wait or died, and retry or discard one (their pharmacies only; audited)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from queues.audit import record
from queues.auth import SignedInUser
from queues.errors import NotAllowed, OutreachError
from queues.outbox.states import DEAD, DELIVERED, DISCARDED, PENDING, RETRYING, UNDELIVERED
from queues.store.models import FollowUpAction, Pharmacy
from queues.views.outbox import OUTBOX_LIST_LIMIT, OutboxCounts, OutboxItem, OutboxView


def _require_supervisor(user: SignedInUser) -> None:
    if not user.is_supervisor:
        raise NotAllowed("only supervisors can see and change the outbox")


def outbox_view(session: Session, user: SignedInUser) -> OutboxView:
    _require_supervisor(user)
    ids = list(user.pharmacy_ids)

    def n(status: str) -> ColumnElement[int]:
        return func.count(case((FollowUpAction.status == status, 1)))

    per = {
        row[0]: row[1:]
        for row in session.execute(
            select(FollowUpAction.pharmacy_id, n(PENDING), n(RETRYING), n(DEAD), n(DELIVERED))
            .where(FollowUpAction.pharmacy_id.in_(ids))
            .group_by(FollowUpAction.pharmacy_id)
        ).all()
    }
    pharmacies = session.execute(
        select(Pharmacy.id, Pharmacy.code, Pharmacy.endpoint_url)
        .where(Pharmacy.id.in_(ids))
        .order_by(Pharmacy.code)
    ).all()
    counts = tuple(
        OutboxCounts(code, bool(url), *(int(x) for x in per.get(pid, (0, 0, 0, 0))))
        for pid, code, url in pharmacies
    )
    rows = session.execute(
        select(
            FollowUpAction.id,
            Pharmacy.code,
            FollowUpAction.kind,
            FollowUpAction.status,
            FollowUpAction.tries,
            FollowUpAction.next_attempt_at,
            FollowUpAction.last_error,
            FollowUpAction.created_at,
        )
        .join(Pharmacy, Pharmacy.id == FollowUpAction.pharmacy_id)
        .where(FollowUpAction.pharmacy_id.in_(ids), FollowUpAction.status.in_((*UNDELIVERED, DEAD)))
        .order_by(case((FollowUpAction.status == DEAD, 0), else_=1), FollowUpAction.id)
        .limit(OUTBOX_LIST_LIMIT)
    ).all()
    return OutboxView(counts, tuple(OutboxItem(*row) for row in rows))


def _action(session: Session, user: SignedInUser, action_id: int) -> FollowUpAction:
    _require_supervisor(user)
    action = session.get(FollowUpAction, action_id, with_for_update=True)
    if action is None:
        raise OutreachError(f"no follow-up action #{action_id}")
    if action.pharmacy_id not in user.pharmacy_ids:
        raise NotAllowed(f"follow-up action #{action_id} is not one of your pharmacies'")
    return action


def _not_being_sent(action: FollowUpAction, now: datetime) -> None:
    if action.claimed_until is not None and action.claimed_until > now:
        raise OutreachError(
            f"follow-up action #{action.id} is being sent right now; look again in a moment"
        )


def retry_action(session: Session, user: SignedInUser, action_id: int, now: datetime) -> str:
    """Send a dead or waiting action again at the next pass, with a fresh count of tries."""
    action = _action(session, user, action_id)
    if action.status not in (*UNDELIVERED, DEAD):
        raise OutreachError(f"follow-up action #{action_id} is {action.status}: nothing to retry")
    _not_being_sent(action, now)
    was = action.status
    action.status = RETRYING
    action.tries = 0
    action.next_attempt_at = now
    record(
        session,
        "outbox_retry",
        user_id=user.id,
        patient_id=action.patient_id,
        detail={"action_id": action.id, "was": was},
    )
    return f"action #{action_id} will be sent again at the next pass"


def discard_action(session: Session, user: SignedInUser, action_id: int, now: datetime) -> str:
    """Never send this action (the pharmacy had it by phone, it was recorded in error)."""
    action = _action(session, user, action_id)
    if action.status not in (*UNDELIVERED, DEAD):
        raise OutreachError(f"follow-up action #{action_id} is {action.status}: it stays so")
    _not_being_sent(action, now)
    was = action.status
    action.status = DISCARDED
    action.next_attempt_at = None
    record(
        session,
        "outbox_discard",
        user_id=user.id,
        patient_id=action.patient_id,
        detail={"action_id": action.id, "was": was},
    )
    return f"action #{action_id} discarded: it will not be sent"
