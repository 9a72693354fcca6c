"""A backlog of rows due back (a day's expired leases, a time zone's passed-over patients at its
opening), on SQLite and PostgreSQL: the claim that finds it puts back one batch and the process
wakes the rest off the claimers' path, so the claims after it are the one statement again — and
no live lease or row still passed over is ever put back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from queues.claims import claiming
from queues.claims.admission_ahead import ADMIT_AHEAD, AHEAD_FIRST
from queues.claims.fast_claimer import Claimer
from queues.store.db import transaction
from queues.store.models import QueueEntry
from tests.conftest import NOW, add_pharmacy, add_queue
from tests.queues.test_admission import add_agent

YESTERDAY = NOW - timedelta(days=1)
LEASE = 600
CHUNK = 100  # rows a background transaction wakes here (the product's: claiming.WAKE_CHUNK)


@pytest.fixture(autouse=True)
def small_chunks(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The background wake in chunks of CHUNK rows, so a backlog of a few hundred takes several
    transactions; the process's AdmitAhead as a process starts with it."""
    postgres = engine.dialect.name == "postgresql"
    monkeypatch.setitem(claiming.WAKE_CHUNK, postgres, CHUNK)
    monkeypatch.setitem(claiming._WAKE_CHUNKS, postgres, claiming._wake(postgres, CHUNK))
    ADMIT_AHEAD.size = AHEAD_FIRST
    yield
    assert ADMIT_AHEAD.wait_idle(60)
    ADMIT_AHEAD.size = AHEAD_FIRST


def holders(sessions: sessionmaker[Session]) -> dict[int, int | None]:
    with sessions() as s:
        return dict(s.execute(select(QueueEntry.patient_id, QueueEntry.holder_id)).all())


def test_a_backlog_of_expired_leases_is_put_back_and_the_claims_after_are_one_statement(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    backlog = 3 * claiming.WAKE_BATCH + CHUNK // 2  # the claim wakes one batch, the rest: chunks
    with transaction(sessions) as s:
        ph = add_pharmacy(s)
        pids = add_queue(s, ph, backlog + 40, YESTERDAY)
        yesterday, *today = [add_agent(s, f"a{k}") for k in range(30)]
        # Yesterday's claims: leases that ran out overnight (their consoles long closed).
        s.execute(
            update(QueueEntry)
            .where(QueueEntry.patient_id.in_(pids[:backlog]))
            .values(
                holder_id=yesterday,
                lease_token="yesterday",
                claimed_at=YESTERDAY,
                lease_expires_at=YESTERDAY + timedelta(seconds=LEASE),
                available_at=YESTERDAY + timedelta(seconds=LEASE),
            )
        )
        # Two agents on a call now (live leases), two patients passed over until this afternoon.
        live = dict(zip(pids[backlog : backlog + 2], today[-2:], strict=True))
        for pid, agent in live.items():
            s.execute(
                update(QueueEntry)
                .where(QueueEntry.patient_id == pid)
                .values(
                    holder_id=agent,
                    lease_token=f"live-{pid}",
                    claimed_at=NOW - timedelta(minutes=1),
                    lease_expires_at=NOW + timedelta(seconds=LEASE),
                    available_at=NOW + timedelta(seconds=LEASE),
                )
            )
        passed_over = pids[backlog + 2 : backlog + 4]
        s.execute(
            update(QueueEntry)
            .where(QueueEntry.patient_id.in_(passed_over))
            .values(blocked_reason="best_time", available_at=NOW + timedelta(hours=4))
        )
    woken_before = ADMIT_AHEAD.woken
    with closing(Claimer(engine, sessions)) as claimer:
        first = claimer.next(user_id=today[0], pharmacy_ids=[ph], now=NOW, lease_seconds=LEASE)
        assert first is not None and first.patient_id in pids[:backlog]
        assert (claimer.fast, claimer.full) == (0, 1)
        assert ADMIT_AHEAD.wait_idle(60)  # on the admission-ahead thread, beside the claim
        # Every expired lease is back (the claim's batch and the rest), nothing else moved.
        held = {pid: who for pid, who in holders(sessions).items() if who is not None}
        assert held == {first.patient_id: today[0], **live}
        with sessions() as s:
            still = s.scalars(
                select(QueueEntry.patient_id).where(QueueEntry.blocked_reason.is_not(None))
            )
            assert sorted(still) == sorted(passed_over)
        assert ADMIT_AHEAD.woken - woken_before == backlog - claiming.WAKE_BATCH
        # The claims after it: the one statement each, the best patients in order.
        got = [
            claimer.next(user_id=a, pharmacy_ids=[ph], now=NOW, lease_seconds=LEASE)
            for a in today[1:-2]
        ]
        assert (claimer.fast, claimer.full) == (len(got), 1)
    expected = [p for p in pids[:backlog] if p != first.patient_id][: len(got)]
    assert [c.patient_id for c in got if c] == expected
