"""Settings the domain needs, as frozen dataclasses. `console.config` reads them from config.toml."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QueueSettings:
    # How long a claim holds a patient without a heartbeat; the console beats every third of it.
    lease_seconds: int = 300
    # Refill reminders for chronic prescriptions that run out within this many days.
    refill_window_days: int = 7
    # Attempts per patient before the work closes with a final disposition.
    max_attempts: int = 3
    # Pre-sync check calls this many days before a med-sync patient's pickup day.
    pre_sync_days: int = 3
    # A "mine" callback waits this long past its time for its owner, then goes to anyone.
    callback_grace_minutes: int = 30
