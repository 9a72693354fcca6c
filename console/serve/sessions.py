"""The served browser's sessions: who signed in, since when, and which consoles they have open.

Kept in the server's memory (a restart signs everyone out). A session is named by a random
token in an HttpOnly cookie; it ends on signing out, when one of its consoles ends on its own (the
user signed out or quit in it), or after `session_idle_minutes` without a request while no console
of it is open. The caps on consoles are counted here, on the event loop, so two sockets opened at
once cannot both take the last place.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from queues.views.user import SignedInUser


@dataclass(eq=False)
class WebSession:
    token: str
    user: SignedInUser
    source: str  # "web@ADDRESS", the sign-in's source for the slowing and the audit
    last_seen: float
    # Consoles open (or starting) for this session: each one's closer ends its websocket.
    consoles: dict[int, Callable[[], object]] = field(default_factory=dict)


class Refused(Exception):
    """No console now: `status` is the HTTP status, `why` a short code for the audit, the
    message a sentence for the person."""

    def __init__(self, status: int, why: str, message: str) -> None:
        self.status, self.why = status, why
        super().__init__(message)


class WebSessions:
    def __init__(
        self,
        *,
        max_consoles: int,
        max_consoles_per_user: int,
        idle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_consoles = max_consoles
        self.max_consoles_per_user = max_consoles_per_user
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._sessions: dict[str, WebSession] = {}
        self._next_console = 0

    def open(self, user: SignedInUser, source: str) -> WebSession:
        """A new session (a new token every sign-in: a token seen before a sign-in never
        becomes a signed-in one)."""
        self._sweep()
        session = WebSession(secrets.token_urlsafe(32), user, source, self._clock())
        self._sessions[session.token] = session
        # Bounded: the oldest sessions without a console give way (signing in again is cheap).
        limit = 4 * self.max_consoles + 16
        if len(self._sessions) > limit:
            idle = sorted(
                (s for s in self._sessions.values() if not s.consoles), key=lambda s: s.last_seen
            )
            for old in idle[: len(self._sessions) - limit]:
                del self._sessions[old.token]
        return session

    def find(self, token: str | None) -> WebSession | None:
        """The live session with this token (its idle clock restarts), or None."""
        self._sweep()
        session = self._sessions.get(token or "")
        if session is not None:
            session.last_seen = self._clock()
        return session

    def end(self, session: WebSession) -> list[Callable[[], object]]:
        """Forget the session; the closers of its consoles' websockets, for the caller to run."""
        self._sessions.pop(session.token, None)
        closers = list(session.consoles.values())
        session.consoles.clear()
        return closers

    def running(self, user_id: int | None = None) -> int:
        return sum(
            len(s.consoles)
            for s in self._sessions.values()
            if user_id is None or s.user.id == user_id
        )

    def check_room(self, session: WebSession) -> None:
        """Refused when a console more would pass a cap."""
        mine = self.running(session.user.id)
        if mine >= self.max_consoles_per_user:
            raise Refused(
                429,
                "cap_user",
                f"You have {mine} console{'s' if mine != 1 else ''} open already, as many as "
                "one person may: close one (sign out in it, or close its tab) and try again.",
            )
        if self.running() >= self.max_consoles:
            raise Refused(
                503,
                "cap_total",
                f"All {self.max_consoles} consoles this server runs are in use: try again when "
                "one closes, or ask a supervisor.",
            )

    def add_console(self, session: WebSession, closer: Callable[[], object]) -> int:
        """Take a place for a console (check_room first, with no await in between)."""
        self.check_room(session)
        self._next_console += 1
        session.consoles[self._next_console] = closer
        return self._next_console

    def remove_console(self, session: WebSession, console: int) -> None:
        if session.consoles.pop(console, None) is not None:
            session.last_seen = self._clock()

    def __iter__(self) -> Iterator[WebSession]:
        return iter(list(self._sessions.values()))

    def _sweep(self) -> None:
        now = self._clock()
        for session in list(self._sessions.values()):
            if not session.consoles and now - session.last_seen > self.idle_seconds:
                del self._sessions[session.token]
