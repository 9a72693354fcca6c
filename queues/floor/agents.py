"""Where an agent is in their shift (ready, previewing, on a call, paused…), for the floor view;
a console's presence beat, so a console that died shows its agent offline within a lease."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from queues.audit import record
from queues.errors import OutreachError
from queues.store.models import AgentState, PauseCode, QueueEntry
from queues.views.user import STATES, PauseOption

__all__ = [
    "STATES",
    "PauseOption",
    "clear_silent",
    "pause_options",
    "present",
    "release_on_lock",
    "set_state",
    "sign_out_locked",
]


def pause_options(session: Session) -> tuple[PauseOption, ...]:
    return tuple(
        PauseOption(p.code, p.label)
        for p in session.scalars(select(PauseCode).order_by(PauseCode.label))
    )


def set_state(
    session: Session, user_id: int, state: str, now: datetime, pause_code: str | None = None
) -> None:
    if state not in STATES:
        raise OutreachError(f"unknown agent state {state!r}")
    if state == "paused":
        if pause_code is None or session.get(PauseCode, pause_code) is None:
            raise OutreachError(f"pause code {pause_code!r} is not one of the site's pause codes")
    else:
        pause_code = None
    row = session.get(AgentState, user_id)
    if row is None:
        session.add(AgentState(user_id=user_id, state=state, pause_code=pause_code, since=now))
    elif row.state != state or row.pause_code != pause_code:
        row.state, row.pause_code, row.since = state, pause_code, now
    if state in ("paused", "ready", "offline", "not_ready"):
        record(
            session,
            f"agent_{state}",
            user_id=user_id,
            detail={"pause_code": pause_code} if pause_code else {},
        )


def present(session: Session, user_id: int, now: datetime, lease_seconds: int) -> int:
    """A console's beat (every third of a lease while someone is signed in): its agent is here;
    and any agent whose console went silent for a whole lease is set offline (so the floor is
    right while any console runs). The number set offline. `now` is the wall clock (consoles'
    practice clocks differ), as for clear_silent."""
    session.execute(
        update(AgentState).where(AgentState.user_id == user_id).values(last_seen_at=now)
    )
    return clear_silent(session, now, lease_seconds)


def clear_silent(session: Session, now: datetime, lease_seconds: int) -> int:
    """Agents whose console has not beaten for a lease (killed, unplugged): offline, audited.
    The floor may call it on its refresh too."""
    cutoff = now - timedelta(seconds=lease_seconds)
    silent = list(
        session.scalars(
            select(AgentState).where(
                AgentState.state != "offline",
                AgentState.last_seen_at.is_not(None),
                AgentState.last_seen_at < cutoff,
            )
        )
    )
    for row in silent:
        row.state, row.pause_code, row.since = "offline", None, now
        record(session, "agent_offline_silent", user_id=row.user_id)
    return len(silent)


def release_on_lock(
    session: Session, user_id: int, now: datetime, action: str = "release_on_lock"
) -> int | None:
    """The console stayed locked past its grace: the patient it holds goes back to the queue
    (claimable at once; the agent's draft wrap-up stays on their disk). The patient released."""
    entry = session.scalar(
        select(QueueEntry)
        .where(
            QueueEntry.holder_id == user_id,
            QueueEntry.status == "open",
            QueueEntry.lease_expires_at > now,
        )
        .with_for_update()
    )
    if entry is None:
        return None
    entry.holder_id = None
    entry.lease_token = None
    entry.lease_expires_at = None
    entry.claimed_at = None
    entry.available_at = now
    record(session, action, user_id=user_id, patient_id=entry.patient_id)
    return entry.patient_id


def sign_out_locked(session: Session, user_id: int, now: datetime) -> tuple[bool, int | None]:
    """A locked console's check (its agent cannot finish a wrap-up until unlocked): has a
    supervisor asked it to sign out? If so, at once: the patient it holds goes back to the queue
    (the draft stays on the agent's disk), the agent goes offline, the request is done. Whether
    it signed out, and the patient released."""
    state = session.scalar(
        select(AgentState).where(AgentState.user_id == user_id).with_for_update()
    )
    if state is None or state.logout_requested_at is None:
        return False, None
    patient_id = release_on_lock(session, user_id, now, "release_on_sign_out")
    set_state(session, user_id, "offline", now)
    state.logout_requested_at = None
    return True, patient_id
