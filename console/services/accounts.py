"""Signing in and out: the password check (argon2, one generic failure), and whether the database
is the demo's (the sign-in screen then shows the demo log-ins)."""

from __future__ import annotations

from sqlalchemy import select

from console.services.store import Store
from queues.auth import authenticate
from queues.floor import controls
from queues.store.db import reading, transaction
from queues.store.models import DemoSetting
from queues.views.user import SignedInUser


class Accounts:
    def __init__(self, store: Store) -> None:
        self._store = store

    def sign_in(self, username: str, password: str) -> SignedInUser:
        """AuthenticationFailed (one message for a wrong name or password), or the user."""
        with transaction(self._store.sessions) as session:
            user = authenticate(session, username, password)
            # A request from before this sign-in is stale: the agent had left already. Clearing
            # it here (not comparing times) keeps two consoles with different practice clocks
            # honest.
            controls.logout_done(session, user.id)
            return user

    def unlock(self, user: SignedInUser, password: str) -> None:
        """The idle lock's check: the same user's password again (AuthenticationFailed if not)."""
        with transaction(self._store.sessions) as session:
            authenticate(session, user.username, password)

    def is_demo(self) -> bool:
        with reading(self._store.sessions) as session:
            seed = session.scalar(select(DemoSetting.value).where(DemoSetting.key == "demo_seed"))
        return seed is not None
