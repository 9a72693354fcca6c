"""A Claimer has the full claim's statements compiled when it is made (queues.claims.claiming.
warm_claim_statements, on a thread of its own), so the first full claim of a console — every
console's at once on a new day — compiles nothing, and the warm-up itself stores nothing."""

from __future__ import annotations

import threading
from contextlib import closing
from typing import Any

from sqlalchemy import Engine, event, func, select
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.orm import Session, sessionmaker

from queues.claims.admission import admit_entries
from queues.claims.admission_ahead import ADMIT_AHEAD
from queues.claims.fast_claimer import Claimer, statements_warmed
from queues.store.db import reading, transaction
from queues.store.models import AuditEvent, QueueEntry
from tests.queues.test_admission import add_agent
from tests.queues.test_admission_ahead import DAY_AFTER
from tests.queues.test_claimer import LEASE, NOON, small_queue


def _state(sessions: sessionmaker[Session]) -> tuple[Any, ...]:
    with reading(sessions) as s:
        entries = s.execute(
            select(
                QueueEntry.patient_id,
                QueueEntry.holder_id,
                QueueEntry.available_at,
                QueueEntry.blocked_reason,
                QueueEntry.admitted_until,
            ).order_by(QueueEntry.patient_id)
        ).all()
        audits = s.execute(select(func.count()).select_from(AuditEvent)).scalar()
    return tuple(entries), audits


def test_the_first_full_claim_compiles_nothing_and_the_warm_up_stores_nothing(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:
        ph, pids = small_queue(s, 4)
        amy = add_agent(s, "amy")
        admit_entries(s, NOON)
    before = _state(sessions)
    with closing(Claimer(engine, sessions)) as claimer:
        assert statements_warmed(engine).wait(60)
        assert _state(sessions) == before  # nothing read into a lease, nothing audited
        seen: list[Any] = []
        me = threading.get_ident()

        def note(_c: object, _cur: object, _stmt: str, _p: object, context: Any, _m: bool) -> None:
            if threading.get_ident() == me and context.compiled is not None:
                seen.append(context.cache_hit)

        event.listen(engine, "before_cursor_execute", note)
        try:
            # A day later yesterday's admissions have run out: the full claim.
            claim = claimer.next(user_id=amy, pharmacy_ids=[ph], now=DAY_AFTER, lease_seconds=LEASE)
        finally:
            event.remove(engine, "before_cursor_execute", note)
        assert claim is not None and claim.patient_id == pids[0] and claimer.full == 1
        assert seen and all(hit == CacheStats.CACHE_HIT for hit in seen), seen
        assert ADMIT_AHEAD.wait_idle(60)
