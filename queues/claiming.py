"""Claiming a patient under a lease: at most one agent holds a patient at a time.

PostgreSQL picks the head row with `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on
each other's row; SQLite serializes writers with `BEGIN IMMEDIATE` (see queues.db), so a short
write transaction is atomic. A lease sets `available_at` to its expiry: a console killed mid-call
gives its patient back when the lease runs out, with no sweeper process.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from queues.audit import record
from queues.compliance.patient import admission
from queues.compliance.patient import check_at_dial as verdict_at_dial
from queues.errors import LeaseLost, NotCallable
from queues.models import QueueEntry, Task
from queues.settings import QueueSettings

# Given a patient id, raise NotCallable to skip them for now (compliance at claim time).
Admission = Callable[[Session, int, datetime], None]
# `admit=COMPLIANCE` (the default): the calling rules of queues.compliance; None: no check at all
# (the bare dequeue benchmarks compare against).
COMPLIANCE: Final = "compliance"
# Patients passed over in one claim before giving up for now; each one passed over is moved to
# when they open, so the next claim starts further down (a whole zone asleep costs a few claims).
MAX_SKIPS = 200


@dataclass(frozen=True)
class Claim:
    patient_id: int
    lease_token: str
    claimed_at: datetime
    lease_expires_at: datetime
    resumed: bool = False  # the agent already held this patient (restarted console)


def _held_by(session: Session, user_id: int, now: datetime) -> QueueEntry | None:
    return session.scalar(
        select(QueueEntry).where(
            QueueEntry.holder_id == user_id,
            QueueEntry.status == "open",
            QueueEntry.lease_expires_at > now,
        )
    )


def _head(session: Session, user_id: int, pharmacy_ids: Sequence[int], now: datetime) -> int | None:
    query = (
        select(QueueEntry.patient_id)
        .where(
            QueueEntry.status == "open",
            QueueEntry.available_at <= now,
            QueueEntry.pharmacy_id.in_(pharmacy_ids),
            # A "mine" callback waits for its owner until its grace period ends.
            or_(
                QueueEntry.reserved_for_id.is_(None),
                QueueEntry.reserved_for_id == user_id,
                QueueEntry.reserved_until <= now,
            ),
        )
        .order_by(QueueEntry.sort_key, QueueEntry.patient_id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return session.scalar(query)


def claim_next(
    session: Session,
    *,
    user_id: int,
    pharmacy_ids: Sequence[int],
    now: datetime,
    lease_seconds: int,
    admit: Admission | Literal["compliance"] | None = COMPLIANCE,
    settings: QueueSettings | None = None,
) -> Claim | None:
    """Claim the best next patient for the user, or None when nothing is claimable now.

    Runs in the caller's transaction; commit promptly (the row lock is held until then). An agent
    who already holds a live lease gets that patient back instead of a second one. A patient the
    calling rules forbid now is passed over: `blocked_reason` says why and `available_at` moves to
    when they open (`settings` carries the site's limits; each pharmacy may tighten them).
    """
    if admit == COMPLIANCE:
        admit = admission(settings)
    held = _held_by(session, user_id, now)
    if held is not None:
        assert held.lease_token and held.claimed_at and held.lease_expires_at
        return Claim(
            held.patient_id, held.lease_token, held.claimed_at, held.lease_expires_at, resumed=True
        )
    if not pharmacy_ids:
        return None
    for _ in range(MAX_SKIPS):
        patient_id = _head(session, user_id, pharmacy_ids, now)
        if patient_id is None:
            return None
        if callable(admit):
            try:
                admit(session, patient_id, now)
            except NotCallable as why:
                later = why.next_open_at or now + timedelta(hours=1)
                session.execute(
                    update(QueueEntry)
                    .where(QueueEntry.patient_id == patient_id)
                    .values(
                        available_at=max(later, now + timedelta(minutes=1)),
                        blocked_reason=why.code,
                    )
                )
                continue
        token = str(uuid.uuid4())
        expires = now + timedelta(seconds=lease_seconds)
        session.execute(
            update(QueueEntry)
            .where(QueueEntry.patient_id == patient_id)
            .values(
                holder_id=user_id,
                lease_token=token,
                claimed_at=now,
                lease_expires_at=expires,
                available_at=expires,
                blocked_reason=None,
            )
        )
        record(session, "claim", user_id=user_id, patient_id=patient_id)
        return Claim(patient_id, token, now, expires)
    return None


def _locked_entry(session: Session, patient_id: int, token: str) -> QueueEntry:
    query = select(QueueEntry).where(
        QueueEntry.patient_id == patient_id, QueueEntry.lease_token == token
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    entry = session.scalar(query)
    if entry is None:
        raise LeaseLost(patient_id)
    return entry


def renew_lease(
    session: Session, patient_id: int, token: str, now: datetime, lease_seconds: int
) -> datetime:
    """The heartbeat: push the lease out. Raises LeaseLost when another console took the patient."""
    entry = _locked_entry(session, patient_id, token)
    entry.lease_expires_at = entry.available_at = now + timedelta(seconds=lease_seconds)
    return entry.lease_expires_at


def release(session: Session, patient_id: int, token: str, now: datetime, user_id: int) -> None:
    """Give the patient back untouched (the agent skipped without dialing)."""
    entry = _locked_entry(session, patient_id, token)
    entry.holder_id = None
    entry.lease_token = None
    entry.lease_expires_at = None
    entry.available_at = now
    record(session, "release", user_id=user_id, patient_id=patient_id)


def lock_for_outcome(session: Session, patient_id: int, token: str) -> QueueEntry:
    """The entry, locked, when `token` still holds it (else LeaseLost): outcomes start here."""
    return _locked_entry(session, patient_id, token)


def open_task_ids(session: Session, patient_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Task.id)
            .where(Task.patient_id == patient_id, Task.status == "open")
            .order_by(Task.id)
        )
    )


def check_at_dial(
    session: Session,
    patient_id: int,
    number: str,
    now: datetime,
    settings: QueueSettings | None = None,
) -> None:
    """The second check, the moment before dialing `number`: raises NotCallable (code, sentence,
    next_open_at) when the call may not go out now (the window closed while the agent read, the
    patient opted out on another line, the number was flagged, a cap was reached)."""
    verdict_at_dial(session, patient_id, number, now, settings)
