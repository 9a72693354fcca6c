"""Signing in and out: the password check (argon2, one generic failure), the lockout and slowing
(queues.auth), the TOTP second factor, and whether the database is the demo's (the sign-in screen
then shows the demo log-ins)."""

from __future__ import annotations

import socket
from datetime import datetime

from sqlalchemy import select

from console.services.store import Store
from queues.auth import authenticate
from queues.floor import agents, controls, sign_ins
from queues.store.db import reading, transaction
from queues.store.models import DemoSetting
from queues.timeutil import utcnow
from queues.views.user import SignedInUser, SignInAlerts


def console_source() -> str:
    """Where this console's sign-ins come from, for the slowing per place."""
    return f"console@{socket.gethostname()}"[:128]


class Accounts:
    def __init__(self, store: Store, source: str | None = None) -> None:
        self._store = store
        # `outreach serve` hands in the browser's address; the console its host.
        self.source = source or console_source()

    def sign_in(self, username: str, password: str, code: str | None = None) -> SignedInUser:
        """The user; or AuthenticationFailed (one message for a wrong name, password or code, or
        a locked account), SignInSlowed, SecondFactorRequired (ask for the code and call again),
        NotAllowed (the role needs a code and none is set up)."""
        with transaction(self._store.sessions) as session:
            user = authenticate(
                session,
                username,
                password,
                source=self.source,
                now=utcnow(),  # the wall clock, never a practice clock: TOTP apps use it
                code=code,
                totp_roles=tuple(self._store.settings.auth.totp_required_roles),
            )
            # A request from before this sign-in is stale: the agent had left already. Clearing
            # it here (not comparing times) keeps two consoles with different practice clocks
            # honest.
            controls.logout_done(session, user.id)
            return user

    def unlock(self, user: SignedInUser, password: str) -> None:
        """The idle lock's check: the same user's password again (AuthenticationFailed if not;
        failures count toward the lockout as any sign-in's)."""
        with transaction(self._store.sessions) as session:
            authenticate(
                session,
                user.username,
                password,
                source=self.source,
                now=utcnow(),  # the wall clock, never a practice clock: TOTP apps use it
                second_factor=False,
            )

    def sign_in_alerts(self, user: SignedInUser) -> SignInAlerts:
        """Locked accounts (of the supervisor's pharmacies; an admin's: all) and slowed places,
        for a supervisor's floor (NotAllowed otherwise). On the wall clock, as lockouts are."""
        with reading(self._store.sessions) as session:
            return sign_ins.alerts_for(session, user, utcnow())

    def wall_clock(self) -> datetime:
        """Now on the wall clock, as lockouts run on it (the floor's may be a practice clock)."""
        return utcnow()

    def present(self, user: SignedInUser) -> None:
        """The console's presence beat (the app's, every third of a lease while signed in):
        consoles that went silent for a lease have their agents set offline."""
        with transaction(self._store.sessions) as session:
            agents.present(session, user.id, utcnow(), self._store.settings.queue.lease_seconds)

    def release_on_lock(self, user: SignedInUser) -> int | None:
        """Locked past the grace: the held patient goes back to the queue (the draft stays)."""
        with transaction(self._store.sessions) as session:
            return agents.release_on_lock(session, user.id, self._store.clock.now())

    def sign_out_if_asked(self, user: SignedInUser) -> bool:
        """A locked console's poll: a supervisor asked it to sign out, so it has (the patient back
        in the queue, the agent offline); False if no one asked."""
        with transaction(self._store.sessions) as session:
            done, _ = agents.sign_out_locked(session, user.id, self._store.clock.now())
            return done

    def is_demo(self) -> bool:
        with reading(self._store.sessions) as session:
            seed = session.scalar(select(DemoSetting.value).where(DemoSetting.key == "demo_seed"))
        return seed is not None
