"""Users and sign-in: argon2id hashes (argon2-cffi), one generic failure message, a lockout per
account and a slowing per place, and an optional TOTP second factor (pyotp)."""

from __future__ import annotations

import hmac
import math
from datetime import datetime, timedelta
from typing import Any, NoReturn

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from queues.audit import record
from queues.errors import (
    AuthenticationFailed,
    NotAllowed,
    OutreachError,
    SecondFactorRequired,
    SignInSlowed,
)
from queues.identity import database_id
from queues.store.models import Pharmacy, SignInSource, User
from queues.timeutil import as_utc, utcnow
from queues.views.user import ROLES, LockedAccount, SignedInUser, SignInAlerts, SlowedSource

__all__ = [
    "ROLES",
    "SignedInUser",
    "add_user",
    "authenticate",
    "enroll_totp",
    "hash_password",
    "remove_totp",
    "sign_in_alerts",
    "signed_in",
]

_hasher = PasswordHasher()
# Verified when the user does not exist, so a wrong name costs as long as a wrong password. Written
# out, not hashed at import: that took 0.14 s and 64 MB at every start, `outreach --help` too.
# It has the hasher's parameters (tests/queues/test_auth.py checks it).
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$BdR/w8beBMliJe1HiJ0xSA$Yd9XUTVY3XnhHIHrp4sKuOh7Vy5QGoSr3sPWRAinp+s"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


# Lockout per account (NIST SP 800-63B §5.2.2 limits failed attempts): 5 in a row lock it for 15
# minutes. Slowing per place: from the 4th failure in a row, each try waits 1, 2, 4 … 60 s.
LOCK_AFTER = 5
LOCK_MINUTES = 15
SLOW_AFTER = 3
SLOW_CAP_SECONDS = 60
TOTP_ISSUER = "Outreach Console"


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    source: str = "unknown",
    now: datetime | None = None,
    code: str | None = None,
    second_factor: bool = True,
    totp_roles: tuple[str, ...] = (),
) -> SignedInUser:
    """The user, or AuthenticationFailed (one message for a wrong name, password, code or a
    locked account), SignInSlowed (too many failures from `source`), SecondFactorRequired (the
    password was right; ask for the code), NotAllowed (the role needs a code the user lacks).

    Every refusal is audited and committed before it is raised (the caller's transaction rolls
    back on the error). A failed user name is stored only if that user exists: what was typed
    there may be a password."""
    now = as_utc(now or utcnow())
    source = source[:128]
    user = session.scalar(select(User).where(User.username == username.strip()))
    place = session.get(SignInSource, source)
    if place is not None and place.failures >= SLOW_AFTER:
        wait = min(2 ** (place.failures - SLOW_AFTER), SLOW_CAP_SECONDS)
        ready_at = as_utc(place.last_failed_at) + timedelta(seconds=wait)
        if now < ready_at:
            _audit_refusal(session, "sign_in_slowed", user, source, failures=place.failures)
            session.commit()
            raise SignInSlowed(max(1, math.ceil((ready_at - now).total_seconds())))
    try:
        if user is None or not user.active:
            _hasher.verify(_DUMMY_HASH, password + "\0")
            raise AuthenticationFailed()
        _hasher.verify(user.password_hash, password)
        password_ok = True
    except (VerificationError, InvalidHashError, AuthenticationFailed):
        password_ok = False
    locked = user is not None and user.locked_until is not None and as_utc(user.locked_until) > now
    if not password_ok or locked or user is None:
        _failed(session, user, source, now, locked=locked)
    assert user is not None
    if second_factor and user.totp_secret:
        if not code:
            raise SecondFactorRequired()
        step = _totp_step(user.totp_secret, code.strip(), now)
        if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
            _failed(session, user, source, now, locked=False, code=True)
        user.totp_last_step = step
    elif second_factor and user.role in totp_roles:
        _audit_refusal(session, "login_refused_no_totp", user, source)
        session.commit()
        raise NotAllowed(
            f"A {user.role} signs in with a one-time code here, and none is set up for you: "
            f"ask an admin to run `outreach users totp {user.username}`."
        )
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_sign_ins = 0
    if place is not None:
        session.delete(place)
    record(session, "login", user_id=user.id, detail={"source": source})
    return signed_in(user)


def _audit_refusal(
    session: Session, action: str, user: User | None, source: str, **detail: Any
) -> None:
    if user is not None:
        detail["username"] = user.username
    record(session, action, user_id=user.id if user else None, detail={"source": source, **detail})


def _failed(
    session: Session,
    user: User | None,
    source: str,
    now: datetime,
    *,
    locked: bool,
    code: bool = False,
) -> NoReturn:
    """Count the failure against the account and the place, audit it, commit, refuse."""
    place = session.get(SignInSource, source)
    if place is None:
        session.add(SignInSource(source=source, failures=1, last_failed_at=now))
    else:
        place.failures += 1
        place.last_failed_at = now
    _audit_refusal(
        session,
        "login_failed",
        user,
        source,
        **({"locked": True} if locked else {}),
        **({"second_factor": True} if code else {}),
    )
    if user is not None and not locked:
        user.failed_sign_ins += 1
        if user.failed_sign_ins >= LOCK_AFTER:
            user.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            user.failed_sign_ins = 0
            _audit_refusal(
                session,
                "account_locked",
                user,
                source,
                until=user.locked_until.isoformat(),
            )
    # Commit now: the caller's transaction rolls back on the error we raise, and a failed
    # sign-in must stay on record (and count).
    session.commit()
    raise AuthenticationFailed(
        "Sign-in failed: check the code from your authenticator app." if code else None
    ) from None


def _totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (RFC 6238, 30 s) whose code this is, one step of clock drift either way."""
    import pyotp  # only for accounts with a second factor: an agent without one never loads it

    totp = pyotp.TOTP(secret)
    if not (code.isdigit() and len(code) == totp.digits):
        return None
    step = totp.timecode(now)
    for candidate in (step, step - 1, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def enroll_totp(session: Session, username: str) -> str:
    """A new TOTP secret for the user (replacing any), audited; the otpauth:// URI to scan."""
    import pyotp

    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise OutreachError(f"no user {username!r}")
    user.totp_secret = pyotp.random_base32()
    user.totp_last_step = None
    record(session, "totp_enrolled", user_id=user.id, detail={"username": user.username})
    return pyotp.TOTP(user.totp_secret).provisioning_uri(
        name=user.username, issuer_name=TOTP_ISSUER
    )


def remove_totp(session: Session, username: str) -> None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise OutreachError(f"no user {username!r}")
    user.totp_secret = None
    user.totp_last_step = None
    record(session, "totp_removed", user_id=user.id, detail={"username": user.username})


def sign_in_alerts(session: Session, now: datetime) -> SignInAlerts:
    """Locked accounts and places being slowed down, for the supervisor's floor."""
    now = as_utc(now)
    locked = tuple(
        LockedAccount(u.id, u.username, as_utc(u.locked_until))
        for u in session.scalars(
            select(User)
            .where(User.locked_until.is_not(None), User.locked_until > now)
            .order_by(User.username)
        )
        if u.locked_until is not None
    )
    slowed = tuple(
        SlowedSource(p.source, p.failures, as_utc(p.last_failed_at))
        for p in session.scalars(
            select(SignInSource)
            .where(SignInSource.failures >= SLOW_AFTER)
            .order_by(SignInSource.last_failed_at.desc())
        )
    )
    return SignInAlerts(locked=locked, slowed=slowed)


def signed_in(user: User) -> SignedInUser:
    """The signed-in view of a user row (in a session), with this database's id read in the same
    transaction: what the console keeps local drafts under (queues.identity)."""
    pharmacies = sorted(user.pharmacies, key=lambda p: p.code)
    session = object_session(user)
    assert session is not None, "signed_in needs the user's row in a session"
    return SignedInUser(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        pharmacy_ids=tuple(p.id for p in pharmacies),
        pharmacy_codes=tuple(p.code for p in pharmacies),
        pharmacy_zones=tuple(p.timezone for p in pharmacies),
        database_id=database_id(session),
    )


def add_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    pharmacy_codes: list[str],
    display_name: str | None = None,
    *,
    by: SignedInUser | None = None,
) -> SignedInUser:
    """Create a user; every problem is named before anything is written. The audit row names
    `by`, the admin who added them (None: the site's first admin, who adds themselves; who may
    add whom is queues.access.check_may_add_user)."""
    if role not in ROLES:
        raise OutreachError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if (
        not username
        or len(username) > 64
        or not username.replace(".", "").replace("_", "").isalnum()
    ):
        raise OutreachError(f"user name {username!r}: use 1-64 letters, digits, '.' or '_'")
    if len(password) < 8:
        raise OutreachError("password: use at least 8 characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise OutreachError(f"user {username!r} already exists")
    pharmacies = list(session.scalars(select(Pharmacy).where(Pharmacy.code.in_(pharmacy_codes))))
    missing = sorted(set(pharmacy_codes) - {p.code for p in pharmacies})
    if missing:
        raise OutreachError(f"no pharmacy with code {', '.join(missing)}")
    user = User(
        username=username,
        display_name=display_name or username,
        role=role,
        password_hash=hash_password(password),
        pharmacies=pharmacies,
    )
    session.add(user)
    session.flush()
    record(
        session,
        "user_added",
        user_id=by.id if by is not None else user.id,
        detail={"role": role, "at": utcnow().isoformat(), "added_user_id": user.id},
    )
    return signed_in(user)
