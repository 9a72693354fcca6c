"""`[outbox]` of config.toml: the signing key's variable, timeouts, tries and backoff."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from queues.errors import ConfigError, OutreachError


@dataclass(frozen=True)
class OutboxSettings:
    # The environment variable that holds the HMAC-SHA256 signing key (never the file itself).
    key_env: str = "OUTREACH_OUTBOX_KEY"
    # Seconds to open a connection, and to wait on each read or write of a request.
    connect_timeout_seconds: float = 5.0
    timeout_seconds: float = 15.0
    # Tries before an action is dead (a 4xx other than 408/409/429 is dead at once).
    max_tries: int = 15
    # The first retry comes after about this long; each next one waits twice as long (plus up to
    # half of this again, at random), never longer than the cap.
    first_retry_seconds: float = 1.0
    backoff_cap_seconds: float = 1800.0
    # The console's deliverer and `outbox deliver --loop` look for new actions this often.
    poll_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not self.key_env.strip():
            raise ConfigError("[outbox]", "outbox.key_env", "expected a variable name")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
                raise ConfigError(
                    "[outbox]", f"outbox.{f.name}", f"expected more than 0, got {value}"
                )

    @property
    def claim_seconds(self) -> float:
        """How long a deliverer's claim on a row lasts: two full requests' worth of timeouts, so
        no other deliverer sends it meanwhile; a deliverer killed mid-send frees it after this."""
        return 2 * (self.connect_timeout_seconds + 2 * self.timeout_seconds)


def signing_key(settings: OutboxSettings) -> bytes:
    """The key from the environment variable the settings name; a clear error without it."""
    value = os.environ.get(settings.key_env, "")
    if not value:
        raise OutreachError(
            f"{settings.key_env} is not set: the outbox signs every action it sends with the key "
            f"in that environment variable ([outbox].key_env in config.toml names it); nothing "
            "was sent"
        )
    return value.encode()
