"""Supervisor controls over the floor; each one checks the supervisor's pharmacies and is audited."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from queues.audit import record
from queues.auth import SignedInUser
from queues.errors import NotAllowed, OutreachError
from queues.settings import QueueSettings
from queues.store.models import (
    AgentState,
    Callback,
    Campaign,
    Patient,
    Pharmacy,
    Phone,
    QueueEntry,
    Task,
    User,
    UserPharmacy,
)


def _require_supervisor(user: SignedInUser) -> None:
    if not user.is_supervisor:
        raise NotAllowed("only supervisors can do that")


def _campaign(session: Session, user: SignedInUser, campaign_id: int) -> Campaign:
    _require_supervisor(user)
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise OutreachError(f"no campaign {campaign_id}")
    if campaign.pharmacy_id is None and user.role != "admin":
        # It runs for every pharmacy, most of them someone else's.
        raise NotAllowed(f"campaign {campaign.name!r} runs for every pharmacy: ask an admin")
    if campaign.pharmacy_id is not None and campaign.pharmacy_id not in user.pharmacy_ids:
        raise NotAllowed(f"campaign {campaign.name!r} is not one of your pharmacies'")
    return campaign


def set_campaign_active(
    session: Session,
    user: SignedInUser,
    campaign_id: int,
    active: bool,
    now: datetime,
    settings: QueueSettings | None = None,
) -> None:
    """Pause or resume a campaign; the queues are rebuilt at once so agents stop (or start)
    getting its patients at their next claim. Paused work comes back on resume.

    Only the patients the campaign can reach are rebuilt (nobody else's tasks depend on it): at
    100,000 patients a build of everyone held the supervisor, and on SQLite every agent's claim,
    for 15-20 s. A pause rebuilds the patients with open work in it; a resume every patient of
    its pharmacy (everyone, for a campaign all pharmacies share), so that those who became due
    while it was paused get their tasks too."""
    from queues.building.build import build_queues  # a supervisor's control: agents never load it

    campaign = _campaign(session, user, campaign_id)
    if campaign.active == active:
        return
    affected: list[int] | None
    if not active:
        affected = _with_open_work(session, campaign_id)
    elif campaign.pharmacy_id is not None:
        affected = list(
            session.scalars(select(Patient.id).where(Patient.pharmacy_id == campaign.pharmacy_id))
        )
    else:
        affected = None
    campaign.active = active
    session.flush()
    build_queues(session, now, settings, patients=affected)
    record(
        session,
        "campaign_resumed" if active else "campaign_paused",
        user_id=user.id,
        detail={"campaign_id": campaign_id},
    )


def set_campaign_weight(
    session: Session,
    user: SignedInUser,
    campaign_id: int,
    weight: float,
    now: datetime,
    settings: QueueSettings | None = None,
) -> None:
    from queues.building.build import build_queues  # a supervisor's control: agents never load it

    if not 0 <= weight <= 10:
        raise OutreachError(f"weight {weight}: use a number from 0 to 10")
    campaign = _campaign(session, user, campaign_id)
    old = campaign.weight
    campaign.weight = weight
    session.flush()
    # The weight scores only the campaign's own open tasks: rescore their patients.
    build_queues(session, now, settings, patients=_with_open_work(session, campaign_id))
    record(
        session,
        "campaign_weight",
        user_id=user.id,
        detail={"campaign_id": campaign_id, "from": old, "to": weight},
    )


def _with_open_work(session: Session, campaign_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Task.patient_id)
            .where(Task.campaign_id == campaign_id, Task.status == "open")
            .distinct()
        )
    )


def _patient_in_scope(session: Session, user: SignedInUser, patient_id: int) -> Patient:
    _require_supervisor(user)
    patient = session.get(Patient, patient_id)
    if patient is None or patient.pharmacy_id not in user.pharmacy_ids:
        raise NotAllowed(f"patient {patient_id} is not in your pharmacies")
    return patient


def release_lease(session: Session, user: SignedInUser, patient_id: int, now: datetime) -> None:
    """Put a held patient back in the queue (a console that died, an agent gone home)."""
    _patient_in_scope(session, user, patient_id)
    entry = session.get(QueueEntry, patient_id)
    if entry is None or entry.holder_id is None:
        raise OutreachError(f"patient {patient_id} is not held by anyone")
    holder = entry.holder_id
    # The holder's next heartbeat or save finds the token gone (LeaseLost): nothing is recorded
    # twice, and the patient is claimable at once.
    entry.holder_id = entry.lease_token = entry.lease_expires_at = entry.claimed_at = None
    entry.available_at = now
    entry.blocked_reason = None
    record(
        session,
        "lease_released",
        user_id=user.id,
        patient_id=patient_id,
        detail={"holder_id": holder},
    )


def reassign_callback(
    session: Session, user: SignedInUser, callback_id: int, to_user_id: int | None
) -> None:
    """Give a callback to another agent of the pharmacy, or (None) to anyone."""
    callback = session.get(Callback, callback_id)
    if callback is None or callback.status != "pending":
        raise OutreachError(f"no pending callback {callback_id}")
    patient = _patient_in_scope(session, user, callback.patient_id)
    if to_user_id is not None:
        assigned = session.scalar(
            select(UserPharmacy.user_id).where(
                UserPharmacy.user_id == to_user_id, UserPharmacy.pharmacy_id == patient.pharmacy_id
            )
        )
        if assigned is None:
            raise OutreachError(f"user {to_user_id} does not work for this patient's pharmacy")
    old = callback.owner_id
    callback.owner_id = to_user_id
    entry = session.get(QueueEntry, callback.patient_id)
    if entry is not None:
        entry.reserved_for_id = to_user_id
        if to_user_id is None:
            entry.reserved_until = None
    record(
        session,
        "callback_reassigned",
        user_id=user.id,
        patient_id=callback.patient_id,
        detail={"callback_id": callback_id, "from": old, "to": to_user_id},
    )


def request_logout(session: Session, user: SignedInUser, agent_id: int, now: datetime) -> None:
    """The agent's console signs out at its next check (it first asks for any open wrap-up)."""
    _require_supervisor(user)
    shared = session.scalar(
        select(UserPharmacy.user_id).where(
            UserPharmacy.user_id == agent_id, UserPharmacy.pharmacy_id.in_(user.pharmacy_ids)
        )
    )
    agent = session.get(User, agent_id)
    if shared is None or agent is None:
        raise NotAllowed(f"agent {agent_id} does not work for your pharmacies")
    state = session.get(AgentState, agent_id)
    if state is None or state.state == "offline":
        raise OutreachError(f"{agent.display_name} is not signed in")
    state.logout_requested_at = now
    record(session, "agent_logout_requested", user_id=user.id, detail={"agent_id": agent_id})


def logout_requested(session: Session, agent_id: int, signed_in_at: datetime) -> bool:
    """For the agent's console to poll: has a supervisor asked this session to sign out?
    A request made before this sign-in is stale (the agent had gone already)."""
    at = session.scalar(
        select(AgentState.logout_requested_at).where(AgentState.user_id == agent_id)
    )
    return at is not None and at >= signed_in_at


def logout_done(session: Session, agent_id: int) -> None:
    """The console signed out as asked: clear the request (the sign-out itself is audited)."""
    session.execute(
        update(AgentState).where(AgentState.user_id == agent_id).values(logout_requested_at=None)
    )


def add_do_not_call(
    session: Session, user: SignedInUser, *, patient_id: int, number: str | None, now: datetime
) -> int:
    """Suppress one number, or (number None) the whole patient; open work closes at once."""
    _patient_in_scope(session, user, patient_id)
    if number is None:
        session.execute(update(Patient).where(Patient.id == patient_id).values(do_not_call=True))
        closed = session.execute(
            update(Task)
            .where(Task.patient_id == patient_id, Task.status == "open")
            .values(status="closed", closed_at=now, closed_reason="do_not_call")
        ).rowcount  # type: ignore[attr-defined]
        session.execute(
            update(QueueEntry)
            .where(QueueEntry.patient_id == patient_id, QueueEntry.holder_id.is_(None))
            .values(status="done")
        )
    else:
        changed = session.execute(
            update(Phone)
            .where(Phone.patient_id == patient_id, Phone.number == number)
            .values(do_not_call=True)
        ).rowcount  # type: ignore[attr-defined]
        if not changed:
            raise OutreachError(f"patient {patient_id} has no number {number}")
        closed = 0
    record(
        session,
        "do_not_call_added",
        user_id=user.id,
        patient_id=patient_id,
        detail={"scope": "patient" if number is None else "number"},
    )
    return int(closed or 0)


def add_do_not_call_for(session: Session, user: SignedInUser, what: str, now: datetime) -> str:
    """Do-not-call from what a supervisor has at hand: a phone number (+E.164: that number, for
    every patient of their pharmacies who has it) or a patient's MRN (`MRN`, or `CODE:MRN` when
    two pharmacies use the same one). Returns what was done, in words."""
    _require_supervisor(user)
    what = what.strip()
    if not what:
        raise OutreachError("give a phone number (+1…) or a patient's MRN")
    if what.startswith("+"):
        number = "+" + "".join(ch for ch in what if ch.isdigit())
        owners = list(
            session.scalars(
                select(Phone.patient_id)
                .join(Patient, Patient.id == Phone.patient_id)
                .where(Phone.number == number, Patient.pharmacy_id.in_(user.pharmacy_ids))
                .distinct()
            )
        )
        if not owners:
            raise OutreachError(f"no patient of your pharmacies has the number {number}")
        for patient_id in owners:
            add_do_not_call(session, user, patient_id=patient_id, number=number, now=now)
        return f"{number} is now do-not-call ({len(owners)} patient(s))"
    code, _, mrn = what.rpartition(":")
    query = (
        select(Patient.id, Pharmacy.code)
        .join(Pharmacy, Pharmacy.id == Patient.pharmacy_id)
        .where(Patient.mrn == mrn, Patient.pharmacy_id.in_(user.pharmacy_ids))
    )
    if code:
        query = query.where(Pharmacy.code == code.upper())
    found = session.execute(query).all()
    if not found:
        raise OutreachError(f"no patient with MRN {mrn!r} in your pharmacies")
    if len(found) > 1:
        codes = ", ".join(sorted(c for _, c in found))
        raise OutreachError(f"MRN {mrn!r} is in {codes}: write CODE:{mrn}")
    patient_id, pharmacy = found[0]
    closed = add_do_not_call(session, user, patient_id=patient_id, number=None, now=now)
    return f"patient {pharmacy}:{mrn} is now do-not-call ({closed} open task(s) closed)"


def lease_still_held(session: Session, patient_id: int, token: str) -> bool:
    """For the agent's console to poll with `logout_requested`: False once a supervisor released
    the patient (or the lease ran out), so the console can say so within a refresh instead of
    at its next heartbeat."""
    return (
        session.scalar(
            select(QueueEntry.patient_id).where(
                QueueEntry.patient_id == patient_id, QueueEntry.lease_token == token
            )
        )
        is not None
    )
