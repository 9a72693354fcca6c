"""A dial permit: the domain's word that one number may be called, with which caller ID, until when.

The softphone checks nothing itself: whoever checked the calling rules hands it a permit, and the
thread refuses to send an INVITE once the permit has run out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class DialPermit:
    number: str  # a phone number dialled through [sip].server, or a full sip: URI
    caller_id: str | None  # None: the account's caller ID
    display_name: str | None  # None: the account's display name
    # A time.monotonic() deadline, not a wall-clock instant: the domain computes "callable until T"
    # in its own clock (possibly a practice clock that started hours away from the wall clock) and
    # converts it to seconds from now; the softphone thread compares it with time.monotonic(),
    # which no clock change, practice clock or NTP step can move.
    expires_at: float

    @classmethod
    def for_seconds(
        cls,
        number: str,
        seconds: float,
        *,
        caller_id: str | None = None,
        display_name: str | None = None,
    ) -> DialPermit:
        """A permit valid for `seconds` from now."""
        return cls(number, caller_id, display_name, time.monotonic() + seconds)

    def valid(self, now: float | None = None) -> bool:
        """True until `expires_at` (`now` is a time.monotonic() reading; default: now)."""
        return (time.monotonic() if now is None else now) < self.expires_at
