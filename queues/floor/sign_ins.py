"""Sign-in alerts for a supervisor's floor: the accounts of their pharmacies locked now (with where
the failure that locked each came from), and the places whose sign-ins are being slowed; and
unlocking an account before its lockout runs out (the floor's `u`, `outreach users unlock`)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from queues.access import a_role, require_role
from queues.audit import record
from queues.auth import LOCK_AFTER, sign_in_alerts
from queues.errors import NotAllowed, OutreachError
from queues.store.models import AuditEvent, SignInSource, User, UserPharmacy
from queues.timeutil import as_utc
from queues.views.user import SignedInUser, SignInAlerts

__all__ = ["alerts_for", "unlock_account"]


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


def unlock_account(session: Session, by: SignedInUser, username: str, now: datetime) -> str:
    """Unlock `username`'s account before its lockout runs out: its failures in a row forgotten,
    and the place the failures that locked it came from no longer slowed (the supervisor vouches
    for the agent, who signs in at once). An admin unlocks any account; a supervisor an agent of
    one of their pharmacies; anyone else is refused (NotAllowed, in words). Audited as
    `account_unlocked` by `by`, naming whose. `now` is the wall clock, as lockouts run on it.
    Returns what was done, in words."""
    require_role(by, ("supervisor", "admin"), "unlock an account")
    user = session.scalar(select(User).where(User.username == username.strip()))
    if by.role != "admin":
        shares = user is not None and session.scalar(
            select(UserPharmacy.user_id).where(
                UserPharmacy.user_id == user.id,
                UserPharmacy.pharmacy_id.in_(by.pharmacy_ids),
            )
        )
        if user is None or not shares:
            codes = ", ".join(by.pharmacy_codes) or "none"
            raise NotAllowed(
                f"{username!r} is not an agent of your pharmacies ({codes}): a supervisor unlocks "
                "their own pharmacies' agents; ask an admin"
            )
        if user.role != "agent":
            raise NotAllowed(
                f"{user.username} is {a_role(user.role)}: only an admin unlocks "
                f"{a_role(user.role)}'s account"
            )
    if user is None:
        raise OutreachError(f"no user {username!r}")
    now = as_utc(now)
    locked = user.locked_until is not None and as_utc(user.locked_until) > now
    if not locked and not user.failed_sign_ins:
        raise OutreachError(f"{user.username}'s account is not locked")
    source = _locked_from(session, user.id) if locked else ""
    place = session.get(SignInSource, source) if source else None
    failures = user.failed_sign_ins
    user.locked_until = None
    user.failed_sign_ins = 0
    if place is not None:
        session.delete(place)
    record(
        session,
        "account_unlocked",
        user_id=by.id,
        detail={
            "username": user.username,
            "unlocked_user_id": user.id,
            "was_locked": locked,
            **({"source_cleared": source} if place is not None else {}),
        },
    )
    if not locked:
        return f"{user.username} was not locked; their {_failures(failures)} are forgotten"
    slowed = f"; sign-ins from {source} are no longer slowed" if place is not None else ""
    return f"{user.username} is unlocked and can sign in now{slowed}"


def _failures(n: int) -> str:
    return f"{n} failed sign-in" + ("" if n == 1 else "s")
