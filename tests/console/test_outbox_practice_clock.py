"""The outbox runs on the wall clock, whatever clock the console's floor shows: a deliverer claims
and retries actions in real time (it waits on real servers), so a supervisor's retry or discard
must be judged in that time too. `outreach demo` starts a practice clock hours ahead of the wall
(the next weekday at 10:00); with the practice time, a dead action the supervisor retried waited
those hours before any deliverer sent it, and a discard passed over a deliverer's live claim."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from console.services.outbox import Outbox
from queues.clock import FixedClock
from queues.errors import OutreachError
from queues.outbox.delivery import Deliverer
from queues.store.db import reading, transaction
from queues.store.models import FollowUpAction, Pharmacy
from queues.timeutil import utcnow
from queues.views.user import SignedInUser
from tests.e2e.helpers import user_id
from tests.e2e.test_outbox_screen import world
from tests.outbox_receiver import KEY, running_receiver

AHEAD = timedelta(hours=3)  # a demo opened at 07:00 practises at 10:00


def test_a_retry_on_a_practice_clock_ahead_is_sent_at_the_next_pass(tmp_path: Path) -> None:
    w, ids = world(tmp_path)
    store = dataclasses.replace(w.store, clock=FixedClock(utcnow() + AHEAD, is_practice=True))
    with reading(store.sessions) as s:
        sue = user_id(s, "sue")
    outbox = Outbox(store, SignedInUser(sue, "sue", "Sue", "supervisor", (1,), ("TX1",)))
    outbox.retry(ids["dead"])
    with running_receiver() as receiver:
        with transaction(store.sessions) as s:
            s.get_one(Pharmacy, 1).endpoint_url = receiver.url
            key = s.get_one(FollowUpAction, ids["dead"]).idempotency_key
        deliverer = Deliverer(store.sessions, store.settings.outbox, KEY.encode())
        try:
            deliverer.deliver_due()
        finally:
            deliverer.close()
    assert receiver.acted[key] == 1
    with reading(store.sessions) as s:
        status = s.scalars(
            select(FollowUpAction.status).where(FollowUpAction.id == ids["dead"])
        ).one()
    assert status == "delivered"


def test_a_discard_on_a_practice_clock_ahead_waits_for_a_send_under_way(tmp_path: Path) -> None:
    w, ids = world(tmp_path)
    store = dataclasses.replace(w.store, clock=FixedClock(utcnow() + AHEAD, is_practice=True))
    with transaction(store.sessions) as s:
        sue = user_id(s, "sue")
        # A deliverer holds it for the next minute of real time (its claim).
        s.get_one(FollowUpAction, ids["pending"]).claimed_until = utcnow() + timedelta(minutes=1)
    outbox = Outbox(store, SignedInUser(sue, "sue", "Sue", "supervisor", (1,), ("TX1",)))
    with pytest.raises(OutreachError, match="being sent right now"):
        outbox.discard(ids["pending"])
    with reading(store.sessions) as s:
        assert s.get_one(FollowUpAction, ids["pending"]).status == "pending"
