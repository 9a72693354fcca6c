"""The outbox as a supervisor sees it: counts per pharmacy and the actions that wait or died.

No patient appears here (no name, no MRN): an action is known by its number, kind and pharmacy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

OUTBOX_LIST_LIMIT = 200


@dataclass(frozen=True)
class OutboxCounts:
    pharmacy: str  # code
    endpoint: bool  # an endpoint is set: without one its actions wait
    pending: int
    retrying: int
    dead: int
    delivered: int

    @property
    def undelivered(self) -> int:
        return self.pending + self.retrying


@dataclass(frozen=True)
class OutboxItem:
    action_id: int
    pharmacy: str
    kind: str
    status: str  # pending | retrying | dead
    tries: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True)
class OutboxView:
    counts: tuple[OutboxCounts, ...]
    items: tuple[OutboxItem, ...]  # dead first, then the oldest waiting; at most the limit
