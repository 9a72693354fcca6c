"""`Services`: what the app is handed, built on a `Store`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from console.config import Settings
from console.services.accounts import Accounts
from console.services.agent_shift import AgentShift
from console.services.outbox import Outbox, OutboxCourier
from console.services.phone_line import PhoneLine
from console.services.store import Store, open_store
from console.softphone.events import PhoneEvent
from queues.clock import Clock
from queues.views.user import SignedInUser

if TYPE_CHECKING:  # the floor (and the reports under it) loads with a supervisor's first use
    from console.services.floor import Floor


class Services:
    """What the app is handed: sign-in, the agent's shift, the floor and the phone line."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.settings: Settings = store.settings
        self.clock: Clock = store.clock
        self.accounts = Accounts(store)

    def agent_shift(self, user: SignedInUser) -> AgentShift:
        return AgentShift(self._store, user)

    def floor(self, user: SignedInUser) -> Floor:
        """NotAllowed for anyone but a supervisor (or an admin)."""
        from console.services.floor import Floor

        return Floor(self._store, user)

    def outbox(self, user: SignedInUser) -> Outbox:
        """NotAllowed for anyone but a supervisor (or an admin)."""
        return Outbox(self._store, user)

    def outbox_courier(self) -> OutboxCourier | None:
        """The console's deliverer, not started; None without a signing key."""
        return OutboxCourier.for_store(self._store)

    def phone_line(self, on_event: Callable[[PhoneEvent], None]) -> PhoneLine | None:
        """The softphone for a workspace, not started; None without a SIP account (manual
        dialling)."""
        if not self.settings.sip.server:
            return None
        return PhoneLine(self.settings.sip, on_event)

    def close(self) -> None:
        self._store.close()


def build_services(settings: Settings, *, clock: Clock | None = None) -> Services:
    """Open the database (migrating it) and build the services on it."""
    return Services(open_store(settings, clock=clock))
