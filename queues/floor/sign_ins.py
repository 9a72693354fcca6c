"""Sign-in alerts for a supervisor's floor: the accounts of their pharmacies locked now (with where
the failure that locked each came from), and the places whose sign-ins are being slowed."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from queues.auth import LOCK_AFTER, sign_in_alerts
from queues.errors import NotAllowed
from queues.store.models import AuditEvent, UserPharmacy
from queues.views.user import SignedInUser, SignInAlerts

__all__ = ["alerts_for"]


def alerts_for(session: Session, supervisor: SignedInUser, now: datetime) -> SignInAlerts:
    """What `supervisor` may see at `now` (the wall clock: lockouts run on it). An admin sees
    every locked account; a supervisor those of users sharing one of their pharmacies. Every
    slowed place is shown (a place is a host or an address, no one's account)."""
    if not supervisor.is_supervisor:
        raise NotAllowed("Only supervisors see sign-in alerts.")
    alerts = sign_in_alerts(session, now)
    locked = alerts.locked
    if locked and supervisor.role != "admin":
        ours = set(
            session.scalars(
                select(UserPharmacy.user_id).where(
                    UserPharmacy.user_id.in_([a.user_id for a in locked]),
                    UserPharmacy.pharmacy_id.in_(supervisor.pharmacy_ids),
                )
            )
        )
        locked = tuple(a for a in locked if a.user_id in ours)
    return SignInAlerts(
        locked=tuple(
            dataclasses.replace(a, source=_locked_from(session, a.user_id), failures=LOCK_AFTER)
            for a in locked
        ),
        slowed=alerts.slowed,
    )


def _locked_from(session: Session, user_id: int) -> str:
    """The place of the failure that locked the account (its latest `account_locked` audit)."""
    detail = session.scalar(
        select(AuditEvent.detail)
        .where(AuditEvent.action == "account_locked", AuditEvent.user_id == user_id)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    source = detail.get("source") if isinstance(detail, dict) else None
    return source if isinstance(source, str) else ""
