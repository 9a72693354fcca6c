"""Where an agent is in their shift (ready, previewing, on a call, paused…), for the floor view."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from queues.audit import record
from queues.errors import OutreachError
from queues.store.models import AgentState, PauseCode
from queues.views.user import STATES, PauseOption

__all__ = ["STATES", "PauseOption", "pause_options", "set_state"]


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
