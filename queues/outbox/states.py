"""The delivery states of a follow-up action and the words the outbox uses for them."""

from __future__ import annotations

from typing import Final

PENDING: Final = "pending"  # never tried
RETRYING: Final = "retrying"  # tried; next_attempt_at says when again
DELIVERED: Final = "delivered"  # the pharmacy answered 2xx, or 409 (it had it already)
DEAD: Final = "dead"  # given up: refused (4xx) or out of tries; a supervisor may retry it
DISCARDED: Final = "discarded"  # a supervisor decided it will never be sent

UNDELIVERED: Final = (PENDING, RETRYING)
STATES: Final = (PENDING, RETRYING, DELIVERED, DEAD, DISCARDED)
