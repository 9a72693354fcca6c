"""The console's side of `outreach serve`: a console started for a signed-in browser opens
already signed in, by redeeming the one-time ticket the server put in its environment."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from queues.views.user import SignedInUser

if TYPE_CHECKING:
    from console.services.store import Store

TICKET_ENV = "OUTREACH_CONSOLE_TICKET"


def served_user(store: Store) -> tuple[SignedInUser, str] | None:
    """The user the server signed in and their sign-in source (web@ADDRESS), when this console
    was started with a ticket; None for a console started by hand. TicketRefused (audited) for a
    ticket that is unknown, used, expired or whose user can no longer sign in: a console never
    falls back to someone else's sign-in."""
    ticket = os.environ.pop(TICKET_ENV, None)  # gone before anything else could read it
    if ticket is None:
        return None
    from queues.console_tickets import redeem_console_ticket
    from queues.store.db import transaction
    from queues.timeutil import utcnow

    with transaction(store.sessions) as session:
        return redeem_console_ticket(session, ticket, utcnow())
