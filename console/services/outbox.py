"""The outbox as the console uses it: the supervisor's view and controls (`Outbox`), and the
console's own deliverer (`OutboxCourier`), a thread the app owns.

Blocking: screens call `Outbox` from thread workers; the courier never runs on the event loop.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from console.services.store import Store
from queues.errors import NotAllowed, OutreachError
from queues.outbox import supervision
from queues.outbox.settings import signing_key
from queues.store.db import reading, transaction
from queues.timeutil import utcnow
from queues.views.outbox import OutboxView
from queues.views.user import SignedInUser

if TYPE_CHECKING:  # httpx and tenacity (~4 MiB) load only in a console that has a key to send with
    from queues.outbox.delivery import Deliverer

log = logging.getLogger("console.outbox")


class Outbox:
    """A supervisor's outbox: what waits or died at their pharmacies; retry or discard one."""

    def __init__(self, store: Store, user: SignedInUser) -> None:
        if not user.is_supervisor:  # invariant 6
            raise NotAllowed("only supervisors can see the outbox")
        self._store = store
        self.user = user

    def view(self) -> OutboxView:
        with reading(self._store.sessions) as session:
            return supervision.outbox_view(session, self.user)

    # Retry and discard are judged on the wall clock, the deliverers' (queues.outbox.delivery):
    # their claims and retry times are real time. The store's clock may be the demo's practice
    # clock, hours ahead: a retry then waited those hours, a discard passed over a live claim.
    def retry(self, action_id: int) -> str:
        with transaction(self._store.sessions) as session:
            return supervision.retry_action(session, self.user, action_id, utcnow())

    def discard(self, action_id: int) -> str:
        with transaction(self._store.sessions) as session:
            return supervision.discard_action(session, self.user, action_id, utcnow())


class OutboxCourier:
    """Delivers the outbox from inside a running console: one daemon thread, started by the app
    and stopped when it exits (between two actions; a send under way ends by its timeout). Other
    deliverers (`outreach outbox deliver`, other consoles) may run at once: each row is claimed."""

    def __init__(self, deliverer: Deliverer) -> None:
        self._deliverer = deliverer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-courier", daemon=True)

    @classmethod
    def for_store(cls, store: Store) -> OutboxCourier | None:
        """A courier for the store, or None when no signing key is set (then nothing can be
        sent: `outreach outbox deliver` says why)."""
        try:
            key = signing_key(store.settings.outbox)
        except OutreachError:
            log.info(
                "outbox: %s is not set; this console delivers nothing",
                store.settings.outbox.key_env,
            )
            return None
        from queues.outbox.delivery import Deliverer

        return cls(Deliverer(store.sessions, store.settings.outbox, key))

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(wait)

    def _run(self) -> None:
        poll = self._deliverer.settings.poll_seconds
        try:
            while not self._stop.is_set():
                try:
                    self._deliverer.run(self._stop)
                except OutreachError as exc:  # the database is away: try again after a poll
                    log.warning("outbox courier: %s", exc)
                except Exception as exc:  # never a traceback's values: type only
                    log.error("outbox courier failed: %s; retrying", type(exc).__name__)
                self._stop.wait(poll)
        finally:
            self._deliverer.close()
