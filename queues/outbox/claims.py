"""One deliverer at a time per action: a claim on the row while it is sent, and what became of it.

A claim is a lease (`claimed_until`, `claim_token`) taken in one short transaction: PostgreSQL
picks the row with `FOR UPDATE SKIP LOCKED`, so concurrent deliverers pass each other by; on
SQLite the write transaction is exclusive and the UPDATE is conditional on the row still being
free. The HTTP request runs outside any transaction. A deliverer killed mid-send leaves a claim
that runs out after `OutboxSettings.claim_seconds`; the row is then sent again, and the receiver
knows it by its idempotency key. The try is counted when the row is claimed, so a row that kills
its deliverer still ends dead.

Rows are claimed in batches (`claim_batch`: up to a batch's worth in one transaction, their
results recorded together in one more), so commits are paid per batch, not per action. A row
whose claim ran out (its deliverer died holding it) is claimed alone, never in a batch: a row that
kills its deliverer then counts tries against itself only, not against the rows beside it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from queues.outbox.payload import action_body
from queues.outbox.states import DEAD, DELIVERED, PENDING, RETRYING, UNDELIVERED
from queues.store.models import (
    UNDELIVERED_ACTIONS,
    FollowUpAction,
    Patient,
    Pharmacy,
    Prescription,
)
from queues.timeutil import UTCDateTime


@dataclass(frozen=True)
class Claimed:
    """A row this deliverer holds: what to send and how to record what became of it."""

    action_id: int
    key: str
    pharmacy_id: int
    tries: int  # counting the try about to be made
    token: str
    body: bytes


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(FollowUpAction.claimed_until.is_(None), FollowUpAction.claimed_until <= now)


def _due(due_by: datetime) -> ColumnElement[bool]:
    return or_(FollowUpAction.next_attempt_at.is_(None), FollowUpAction.next_attempt_at <= due_by)


_SQLITE_PICK = text(
    "SELECT id, claim_token FROM follow_up_actions "
    "INDEXED BY ix_follow_up_actions_undelivered "
    f"WHERE {UNDELIVERED_ACTIONS} AND pharmacy_id IN :pharmacies "
    "AND (next_attempt_at IS NULL OR next_attempt_at <= :due_by) "
    "AND (claimed_until IS NULL OR claimed_until <= :now) "
    "ORDER BY id LIMIT :limit"
).bindparams(
    bindparam("pharmacies", expanding=True),
    bindparam("due_by", type_=UTCDateTime()),
    bindparam("now", type_=UTCDateTime()),
)


def pick_statement(
    dialect: str, pharmacy_ids: list[int], now: datetime, due_by: datetime, limit: int
) -> Any:
    """The claim's pick: ids (and claim tokens) of the oldest claimable rows, locked on
    PostgreSQL (SKIP LOCKED); SQLite's transaction holds the write lock already."""
    if dialect == "sqlite":
        return _SQLITE_PICK.bindparams(
            pharmacies=list(pharmacy_ids), due_by=due_by, now=now, limit=limit
        )
    return (
        select(FollowUpAction.id, FollowUpAction.claim_token)
        .where(
            text(UNDELIVERED_ACTIONS),
            FollowUpAction.pharmacy_id.in_(pharmacy_ids),
            _due(due_by),
            _free(now),
        )
        .order_by(FollowUpAction.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def claimable(pharmacy_ids: list[int], now: datetime, due_by: datetime) -> ColumnElement[bool]:
    return and_(
        FollowUpAction.status.in_(UNDELIVERED),
        FollowUpAction.pharmacy_id.in_(pharmacy_ids),
        _due(due_by),
        _free(now),
    )


def claim_next(
    session: Session,
    pharmacy_ids: list[int],
    now: datetime,
    due_by: datetime,
    claim_seconds: float,
) -> Claimed | None:
    """Claim the oldest action due by `due_by` (a pass's start: a row retried in this pass waits
    for the next) whose claim is free at `now`, and make its body; None when there is none."""
    taken = claim_batch(session, pharmacy_ids, now, due_by, claim_seconds, 1)
    return taken[0] if taken else None


def claim_batch(
    session: Session,
    pharmacy_ids: list[int],
    now: datetime,
    due_by: datetime,
    claim_seconds: float,
    limit: int,
) -> list[Claimed]:
    """Claim up to `limit` of the oldest actions due by `due_by` whose claims are free at `now`,
    oldest first, with their bodies: one lease for them all. When the oldest candidates include
    a row another deliverer left claimed (it died), that row alone is claimed."""
    if not pharmacy_ids or limit < 1:
        return []
    # The pick reads the partial index of undelivered rows (migration 0020) in id order and
    # stops at `limit`: a pass costs what is left to send, not the pharmacies' whole history.
    # Its predicate is written out as the index's is (a bound parameter would hide that the
    # index applies). SQLite's planner, with no statistics, still prefers a full index of the
    # table and a sort, so there the index is named.
    pick = pick_statement(session.get_bind().dialect.name, pharmacy_ids, now, due_by, limit)
    candidates = session.execute(pick).all()
    left = [row.id for row in candidates if row.claim_token is not None]
    ids = left[:1] if left else [row.id for row in candidates]
    if not ids:
        return []
    token = secrets.token_hex(16)
    taken = session.execute(
        update(FollowUpAction)
        .where(FollowUpAction.id.in_(ids), FollowUpAction.status.in_(UNDELIVERED), _free(now))
        .values(
            claimed_until=now + timedelta(seconds=claim_seconds),
            claim_token=token,
            tries=FollowUpAction.tries + 1,
        )
        .returning(FollowUpAction.id, FollowUpAction.tries)
        .execution_options(synchronize_session=False)
    ).all()
    tries = {action_id: n for action_id, n in taken}
    if not tries:
        return []
    actions = session.execute(
        select(
            FollowUpAction.id,
            FollowUpAction.idempotency_key,
            FollowUpAction.pharmacy_id,
            FollowUpAction.kind,
            FollowUpAction.detail,
            FollowUpAction.created_at,
            Pharmacy.code,
            Patient.mrn,
            Prescription.rxnorm,
            Prescription.drug_name,
        )
        .join(Pharmacy, Pharmacy.id == FollowUpAction.pharmacy_id)
        .join(Patient, Patient.id == FollowUpAction.patient_id)
        .outerjoin(Prescription, Prescription.id == FollowUpAction.prescription_id)
        .where(FollowUpAction.id.in_(list(tries)))
        .order_by(FollowUpAction.id)
    ).all()
    return [
        Claimed(
            action.id,
            action.idempotency_key,
            action.pharmacy_id,
            tries[action.id],
            token,
            action_body(
                kind=action.kind,
                key=action.idempotency_key,
                pharmacy=action.code,
                mrn=action.mrn,
                rxnorm=action.rxnorm,
                drug_name=action.drug_name,
                detail=dict(action.detail or {}),
                created_at=action.created_at,
            ),
        )
        for action in actions
    ]


def _finish(session: Session, claimed: Claimed, values: dict[str, Any]) -> bool:
    """Write the result if the claim is still ours (not run out and taken by another deliverer,
    not retried or discarded by a supervisor meanwhile)."""
    done = session.execute(
        update(FollowUpAction)
        .where(
            FollowUpAction.id == claimed.action_id,
            FollowUpAction.claim_token == claimed.token,
            FollowUpAction.status.in_(UNDELIVERED),
        )
        .values(claimed_until=None, claim_token=None, **values)
    )
    return bool(getattr(done, "rowcount", 0))


def mark_delivered(session: Session, claimed: Claimed, now: datetime) -> bool:
    return _finish(
        session,
        claimed,
        {"status": DELIVERED, "delivered_at": now, "next_attempt_at": None, "last_error": None},
    )


def mark_all_delivered(session: Session, batch: list[Claimed], now: datetime) -> set[int]:
    """`mark_delivered` for rows of one claim in one statement; the ids it recorded."""
    if not batch:
        return set()
    tokens = {claimed.token for claimed in batch}
    if len(tokens) != 1:
        raise ValueError("mark_all_delivered takes the rows of one claim")
    done = session.execute(
        update(FollowUpAction)
        .where(
            FollowUpAction.id.in_([claimed.action_id for claimed in batch]),
            FollowUpAction.claim_token == tokens.pop(),
            FollowUpAction.status.in_(UNDELIVERED),
        )
        .values(
            claimed_until=None,
            claim_token=None,
            status=DELIVERED,
            delivered_at=now,
            next_attempt_at=None,
            last_error=None,
        )
        .returning(FollowUpAction.id)
        .execution_options(synchronize_session=False)
    ).all()
    return {action_id for (action_id,) in done}


def mark_retry(session: Session, claimed: Claimed, at: datetime, reason: str) -> bool:
    return _finish(
        session, claimed, {"status": RETRYING, "next_attempt_at": at, "last_error": reason[:300]}
    )


def mark_dead(session: Session, claimed: Claimed, reason: str) -> bool:
    return _finish(
        session, claimed, {"status": DEAD, "next_attempt_at": None, "last_error": reason[:300]}
    )


def release(session: Session, claimed: Claimed) -> None:
    """Give a row back untried (the deliverer is stopping): its try is not counted."""
    session.execute(
        update(FollowUpAction)
        .where(FollowUpAction.id == claimed.action_id, FollowUpAction.claim_token == claimed.token)
        .values(claimed_until=None, claim_token=None, tries=FollowUpAction.tries - 1)
    )


def next_due(session: Session, pharmacy_ids: list[int], now: datetime) -> datetime | None:
    """When the next undelivered row of these pharmacies can be claimed (its retry time or the
    end of another deliverer's claim, whichever is later); None when there is none."""
    if not pharmacy_ids:
        return None
    at = literal(now, UTCDateTime())
    later = func.coalesce(FollowUpAction.next_attempt_at, at)
    claim_end = func.coalesce(FollowUpAction.claimed_until, at)
    value = session.scalar(
        select(func.min(case((later > claim_end, later), else_=claim_end))).where(
            FollowUpAction.status.in_(UNDELIVERED),
            FollowUpAction.pharmacy_id.in_(pharmacy_ids),
        )
    )
    return value if isinstance(value, datetime) else None


def counts(session: Session) -> dict[str, int]:
    """How many actions are in each undelivered or dead state, all pharmacies."""
    rows = session.execute(
        select(FollowUpAction.status, func.count())
        .where(FollowUpAction.status.in_((PENDING, RETRYING, DEAD)))
        .group_by(FollowUpAction.status)
    ).all()
    found = {status: int(n) for status, n in rows}
    return {s: found.get(s, 0) for s in (PENDING, RETRYING, DEAD)}
