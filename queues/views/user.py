"""Who is signed in and where they stand in their shift, as frozen data."""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def is_supervisor(self) -> bool:
        return self.role in ("supervisor", "admin")


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
