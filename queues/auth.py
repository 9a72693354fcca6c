"""Users and sign-in: argon2id hashes (argon2-cffi), one generic failure message."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from queues.audit import record
from queues.errors import AuthenticationFailed, OutreachError
from queues.store.models import Pharmacy, User
from queues.timeutil import utcnow
from queues.views.user import ROLES, SignedInUser

__all__ = ["ROLES", "SignedInUser", "add_user", "authenticate", "hash_password", "signed_in"]

_hasher = PasswordHasher()
# Verified when the user does not exist, so a wrong name costs as long as a wrong password. Written
# out, not hashed at import: that took 0.14 s and 64 MB at every start, `outreach --help` too.
# It has the hasher's parameters (tests/queues/test_auth.py checks it).
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$BdR/w8beBMliJe1HiJ0xSA$Yd9XUTVY3XnhHIHrp4sKuOh7Vy5QGoSr3sPWRAinp+s"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def authenticate(session: Session, username: str, password: str) -> SignedInUser:
    user = session.scalar(select(User).where(User.username == username.strip()))
    try:
        if user is None or not user.active:
            _hasher.verify(_DUMMY_HASH, password + "\0")
            raise AuthenticationFailed()
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        record(
            session,
            "login_failed",
            user_id=user.id if user else None,
            detail={"username": username[:64]},
        )
        # Commit the audit row now: the caller's transaction rolls back on the error we raise,
        # and a failed sign-in must stay on record.
        session.commit()
        raise AuthenticationFailed() from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    record(session, "login", user_id=user.id)
    return signed_in(user)


def signed_in(user: User) -> SignedInUser:
    pharmacies = sorted(user.pharmacies, key=lambda p: p.code)
    return SignedInUser(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        pharmacy_ids=tuple(p.id for p in pharmacies),
        pharmacy_codes=tuple(p.code for p in pharmacies),
        pharmacy_zones=tuple(p.timezone for p in pharmacies),
    )


def add_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    pharmacy_codes: list[str],
    display_name: str | None = None,
) -> SignedInUser:
    """Create a user; every problem is named before anything is written."""
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
        session, "user_added", user_id=user.id, detail={"role": role, "at": utcnow().isoformat()}
    )
    return signed_in(user)
