"""Who is signed in and where they stand in their shift, as frozen data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ROLES = ("agent", "supervisor", "admin")


@dataclass(frozen=True)
class SignedInUser:
    id: int
    username: str
    display_name: str
    role: str
    pharmacy_ids: tuple[int, ...]
    pharmacy_codes: tuple[str, ...]
    pharmacy_zones: tuple[str, ...] = ()  # IANA zones, in the order of the codes
    # The id of the database signed in to (queues.identity), read with the sign-in: local drafts
    # are kept under it. "" only for a view made by hand (tests), which keeps no drafts.
    database_id: str = ""

    @property
    def is_supervisor(self) -> bool:
        return self.role in ("supervisor", "admin")


@dataclass(frozen=True)
class LockedAccount:
    """An account locked after failed sign-ins in a row, until `until` (UTC)."""

    user_id: int
    username: str
    until: datetime
    source: str = ""  # where the failure that locked it came from (console@host, cli@host…)
    failures: int = 0  # the failed sign-ins in a row that locked it


@dataclass(frozen=True)
class SlowedSource:
    """A place (console host, CLI, browser address) whose sign-ins are being slowed."""

    source: str
    failures: int
    last_failed_at: datetime


@dataclass(frozen=True)
class SignInAlerts:
    """For the supervisor: accounts locked now, places being slowed now."""

    locked: tuple[LockedAccount, ...] = ()
    slowed: tuple[SlowedSource, ...] = ()


STATES = (
    "offline",
    "not_ready",
    "ready",
    "previewing",
    "dialing",
    "on_call",
    "wrap_up",
    "paused",
)


@dataclass(frozen=True)
class PauseOption:
    code: str
    label: str
