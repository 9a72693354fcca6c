"""Who may do what, on which pharmacies: one rule for every entry point (console, CLI, browser).

Roles: an *agent* works their pharmacies' patients (explain one, try a script on one); a
*supervisor* also runs their pharmacies' reports, queue builds and imports; an *admin* manages
users and pharmacies and acts on every pharmacy (an admin adds pharmacies nobody is assigned to
yet, and must reach them). Everyone else's pharmacies are out of reach, and a patient there
looks exactly like a patient who does not exist (no probing for ids).

Every refusal is a NotAllowed with one sentence a person can act on.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from queues.errors import NotAllowed, OutreachError
from queues.store.models import Patient, Pharmacy, User
from queues.views.user import SignedInUser

__all__ = [
    "EVERY_PHARMACY_ROLES",
    "a_role",
    "acting_scope",
    "check_may_add_user",
    "check_may_import",
    "no_users_yet",
    "patients_in_scope",
    "pharmacy_in_scope",
    "require_role",
]

# The roles that act on every pharmacy, assigned or not.
EVERY_PHARMACY_ROLES = ("admin",)


def a_role(role: str) -> str:
    return f"an {role}" if role[:1] in "aeiou" else f"a {role}"


def require_role(user: SignedInUser, roles: tuple[str, ...], doing: str) -> None:
    """NotAllowed unless `user` has one of `roles`; `doing` names the action ("import data")."""
    if user.role not in roles:
        needed = " or ".join(a_role(r) for r in roles)
        raise NotAllowed(f"{user.username} is {a_role(user.role)}; to {doing} you must be {needed}")


def acting_scope(session: Session, user: SignedInUser) -> SignedInUser:
    """`user` with the pharmacies they act on: their own, or every pharmacy for an admin."""
    if user.role not in EVERY_PHARMACY_ROLES:
        return user
    pharmacies = session.execute(
        select(Pharmacy.id, Pharmacy.code, Pharmacy.timezone).order_by(Pharmacy.code)
    ).all()
    return replace(
        user,
        pharmacy_ids=tuple(p.id for p in pharmacies),
        pharmacy_codes=tuple(p.code for p in pharmacies),
        pharmacy_zones=tuple(p.timezone for p in pharmacies),
    )


def pharmacy_in_scope(session: Session, user: SignedInUser, code: str) -> Pharmacy:
    """The pharmacy `code`, if `user` acts on it (see acting_scope); NotAllowed otherwise."""
    pharmacy = session.scalar(select(Pharmacy).where(Pharmacy.code == code))
    if pharmacy is None:
        raise OutreachError(f"--pharmacy: no pharmacy {code!r}; see `outreach pharmacy list`")
    if user.role not in EVERY_PHARMACY_ROLES and pharmacy.id not in user.pharmacy_ids:
        raise NotAllowed(f"{user.username} is not assigned to pharmacy {code}")
    return pharmacy


def check_may_import(session: Session, user: SignedInUser, code: str) -> Pharmacy:
    """A pharmacy's data comes in by an admin, or by a supervisor of that pharmacy."""
    require_role(user, ("supervisor", "admin"), "import data")
    return pharmacy_in_scope(session, user, code)


def patients_in_scope(session: Session, user: SignedInUser) -> list[int]:
    """The ids of every patient of the pharmacies `user` acts on."""
    scope = acting_scope(session, user)
    return list(
        session.scalars(select(Patient.id).where(Patient.pharmacy_id.in_(scope.pharmacy_ids)))
    )


def no_users_yet(session: Session) -> bool:
    """True on a database without any user: its first admin is created without a sign-in."""
    return not session.scalar(select(func.count()).select_from(User))


def check_may_add_user(session: Session, by: SignedInUser | None, role: str) -> None:
    """Only an admin adds users; on a database without any user, its first admin is added by
    whoever holds the database (`by` None). Call it in the transaction that adds the user."""
    if by is not None:
        require_role(by, ("admin",), "add users")
        return
    if not no_users_yet(session):
        raise NotAllowed("users exist already: sign in as an admin to add one")
    if role != "admin":
        raise NotAllowed(
            "the first user of a site must be an admin (--role admin), who then adds the others"
        )
