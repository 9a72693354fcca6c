"""One-time tickets that open a served console already signed in.

`outreach serve` signs the browser's user in (queues.auth), then issues a ticket for the console
process it starts; the console redeems it once, within a minute, instead of asking for the
password a second time. Only the ticket's SHA-256 is stored, so reading the table gives nobody a
ticket, and a ticket nobody issued (a local user setting the variable by hand) matches no row.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from queues.audit import record
from queues.auth import signed_in
from queues.errors import AuthenticationFailed
from queues.store.models import ConsoleTicket, User
from queues.timeutil import as_utc
from queues.views.user import SignedInUser

TICKET_SECONDS = 60


class TicketRefused(AuthenticationFailed):
    """The ticket is unknown, used, expired, or its user can no longer sign in."""

    def __init__(self) -> None:
        super().__init__(
            "This console's sign-in ticket is not valid (used already, expired, or never "
            "issued): sign in again in the browser."
        )


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("utf-8")).hexdigest()


def issue_console_ticket(session: Session, user_id: int, source: str, now: datetime) -> str:
    """A new ticket for `user_id` (signed in from `source`), good once for TICKET_SECONDS."""
    now = as_utc(now)
    session.execute(delete(ConsoleTicket).where(ConsoleTicket.expires_at < now))
    ticket = secrets.token_urlsafe(32)
    session.add(
        ConsoleTicket(
            token_hash=_digest(ticket),
            user_id=user_id,
            source=source[:128],
            expires_at=now + timedelta(seconds=TICKET_SECONDS),
        )
    )
    return ticket


def redeem_console_ticket(session: Session, ticket: str, now: datetime) -> tuple[SignedInUser, str]:
    """The ticket's user and sign-in source; the ticket is gone after this, whatever the answer.
    TicketRefused (audited and committed) when it is unknown, used, expired, or its user is
    inactive or locked."""
    now = as_utc(now)
    digest = _digest(ticket)
    row = session.scalar(select(ConsoleTicket).where(ConsoleTicket.token_hash == digest))
    user_id, source = (row.user_id, row.source) if row is not None else (None, "unknown")
    # Deleted by its key with the count checked: of two consoles redeeming one ticket at once,
    # only the one whose DELETE removed the row gets in.
    gone = session.execute(delete(ConsoleTicket).where(ConsoleTicket.token_hash == digest))
    user = session.get(User, user_id) if user_id is not None else None
    why = None
    if row is None or getattr(gone, "rowcount", 0) != 1:
        why = "unknown"
    elif as_utc(row.expires_at) <= now:
        why = "expired"
    elif user is None or not user.active:
        why = "inactive"
    elif user.locked_until is not None and as_utc(user.locked_until) > now:
        why = "locked"
    if why is not None or user is None:
        record(
            session,
            "console_ticket_refused",
            user_id=user.id if user is not None else None,
            detail={"source": source, "why": why or "unknown"},
        )
        session.commit()
        raise TicketRefused()
    record(session, "console_ticket_used", user_id=user.id, detail={"source": source})
    return signed_in(user), source
